"""Smoke run of ``bench.bench_pipeline --quick``: real ingest, analytics and alerts processes end to end.

No timing is asserted (speed is measured by the benchmark itself). What is checked: every scenario
ran, every published tick was stored (the benchmark raises otherwise), latencies are positive and
ordered, the alert rules fired, and the memory table was sampled.
"""

from __future__ import annotations

import math

import pytest

from bench import _util, bench_pipeline


def _table(out: str, header: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header))
    rows = []
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def _num(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("x"))


@pytest.mark.slow
def test_quick_run_measures_every_scenario(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           service_endpoints) -> None:  # fmt: skip
    monkeypatch.setattr(_util, "ADMIN_URL", service_endpoints.admin_url)
    monkeypatch.setattr(bench_pipeline, "REDIS_URL", service_endpoints.redis_url)

    assert bench_pipeline.main(["--quick"]) == 0
    out = capsys.readouterr().out

    (tput,) = _table(out, "| workers | ticks |")
    assert tput[0] == "1" and _num(tput[1]) > 3_000 and _num(tput[3]) > 0
    bars, metrics = (_num(v) for v in tput[-1].split("/"))
    assert bars > 0 and metrics > 0

    (lat,) = _table(out, "| scenario | workers |")
    p50, p99, worst = _num(lat[3]), _num(lat[4]), _num(lat[5])
    assert 0 < p50 <= p99 <= worst and math.isfinite(worst)
    wait50, wait99 = (_num(v) for v in lat[6].split("/"))
    after50, after99 = (_num(v) for v in lat[7].split("/"))
    assert 0 <= wait50 <= wait99 and 0 < after50 <= after99 <= worst
    assert after50 <= p50 + 1e-9  # the part after the merge cannot exceed the whole
    a50, a99, events = _num(lat[8]), _num(lat[9]), _num(lat[10])
    assert events > 0, "the |z| rules must fire on the generated spread"
    assert 0 < a50 <= a99

    memory = _table(out, "| t s | ticks processed |")
    assert len(memory) >= 2
    assert _num(memory[-1][1]) == _num(_table(out, "| replay | workers |")[-1][2])  # all processed at the end

