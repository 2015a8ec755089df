"""System status reads the age of every heartbeat format the services write."""

from __future__ import annotations

import time

import pytest

from services.api.system_status import _heartbeat_age_s
from shared.lifecycle import heartbeat_payload


@pytest.mark.parametrize(
    "body_of",
    [
        lambda t: heartbeat_payload("analytics", "w1", int(t * 1e6), "running", {}) | {"ts_us": int((t - 3) * 1e6)},
        lambda t: {"updated_us": int((t - 3) * 1e6)},  # ingest
        lambda t: {"ts": t - 3},
    ],
)
def test_heartbeat_age_in_seconds(body_of):
    now = time.time()
    assert _heartbeat_age_s(body_of(now), now) == pytest.approx(3.0, abs=1e-3)


def test_unknown_heartbeat_has_no_age():
    assert _heartbeat_age_s({"state": "running"}, time.time()) is None
