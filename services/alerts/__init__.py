"""The alerts service."""
