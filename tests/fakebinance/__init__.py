"""A local Binance-compatible WebSocket + REST server for tests and benchmarks (see ``server.FakeBinance``)."""

from tests.fakebinance.server import FakeBinance
from tests.fakebinance.tapes import (
    SPOT,
    USDM,
    Tape,
    generated_tapes,
    load_tapes,
    recorded_capture_tapes,
    tile,
)

__all__ = ["FakeBinance", "SPOT", "USDM", "Tape", "generated_tapes", "load_tapes", "recorded_capture_tapes", "tile"]
