"""Instrument and pair names.

An instrument is venue + symbol (``binance-spot.BTCUSDT``). A pair is an ordered (y, x) of
instruments; the hedge regression is y on x. Both have one canonical string form that is safe in
Redis keys and URL path segments (letters, digits, ``-``, ``.``, ``~``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import InvalidInput

VENUES = ("binance-spot", "binance-usdm", "upload", "sim")
DEFAULT_VENUE = "binance-spot"

_VENUE_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,32}$")
# ``~`` separates the two legs in a pair id: unreserved in URLs, never part of a venue or symbol.
PAIR_SEPARATOR = "~"


@dataclass(frozen=True, order=True, slots=True)
class Instrument:
    venue: str
    symbol: str

    def __post_init__(self) -> None:
        if not _VENUE_RE.match(self.venue):
            raise InvalidInput(f"venue {self.venue!r} must be lowercase letters, digits or '-'")
        if not _SYMBOL_RE.match(self.symbol):
            raise InvalidInput(f"symbol {self.symbol!r} must be 2-32 uppercase letters or digits")

    @property
    def id(self) -> str:
        return f"{self.venue}.{self.symbol}"

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, text: str, default_venue: str = DEFAULT_VENUE) -> Instrument:
        """Parse ``venue.SYMBOL`` (or ``venue:SYMBOL``); a bare symbol gets ``default_venue``."""
        text = text.strip()
        for sep in (".", ":"):
            if sep in text:
                venue, symbol = text.split(sep, 1)
                return cls(venue.lower(), symbol.upper())
        return cls(default_venue, text.upper())


@dataclass(frozen=True, slots=True)
class Pair:
    y: Instrument
    x: Instrument

    def __post_init__(self) -> None:
        if self.y == self.x:
            raise InvalidInput(f"a pair needs two different instruments, got {self.y} twice")

    @property
    def id(self) -> str:
        return f"{self.y.id}{PAIR_SEPARATOR}{self.x.id}"

    @property
    def legs(self) -> tuple[Instrument, Instrument]:
        return (self.y, self.x)

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, text: str, default_venue: str = DEFAULT_VENUE) -> Pair:
        """Parse ``Y~X``; ``Y/X`` and ``Y,X`` are accepted as conveniences on the command line."""
        for sep in (PAIR_SEPARATOR, "/", ","):
            if sep in text:
                y, x = text.split(sep, 1)
                return cls(Instrument.parse(y, default_venue), Instrument.parse(x, default_venue))
        raise InvalidInput(f"pair {text!r} must look like 'Y~X', e.g. binance-spot.ETHUSDT~binance-spot.BTCUSDT")
