"""Fixtures for the research tests: a seeded cointegrated pair at bar level."""

from __future__ import annotations

import pytest

from shared.research.pair_bars import PairBars
from shared.testing.universe import UniverseSpec, generate_universe


@pytest.fixture(scope="session")
def planted_bars() -> PairBars:
    """3 000 one-minute bars of a planted cointegrated pair (seeded; see shared.testing.universe)."""
    u = generate_universe(UniverseSpec(n_instruments=2, n_pairs=1, n_bars=3_000, seed=5))
    p = u.planted[0]
    return PairBars.from_frames(u.bars(p.y), u.bars(p.x), names=(p.y, p.x))
