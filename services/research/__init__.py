"""Command-line front ends of ``shared.research``: ``pairs backtest`` and ``pairs screen``."""
