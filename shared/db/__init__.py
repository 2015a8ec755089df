"""Database access: connections, migrations, TimescaleDB detection, and the write/read helpers."""
