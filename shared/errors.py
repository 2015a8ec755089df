"""A small error hierarchy, so callers catch our meaning rather than a library's exception type."""


class PairsError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(PairsError):
    """A setting is missing or invalid; raised at startup so a service fails fast."""


class DecodeError(PairsError):
    """A frame, CSV row or stream entry could not be turned into a record."""


class InvalidInput(PairsError, ValueError):
    """Bad arguments to a pure function (lengths differ, too few points, NaN, unknown option)."""


class TransientError(PairsError):
    """A dependency (Redis, database, network) failed in a way that a retry may fix."""


class LeaseLost(PairsError):
    """This worker no longer owns the pair it was processing; it must stop writing for it."""
