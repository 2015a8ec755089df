"""The project's common package: settings, wire records, stream names, schema and analytics math.

Services import from here; nothing in shared/ imports from services/.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
