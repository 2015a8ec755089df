"""Live Binance ingest: planned sockets, gap backfill by trade id, seeding, rotation and health.

Entry point: ``LiveIngest`` (runner.py); settings: ``LiveSettings`` (settings.py).
"""
