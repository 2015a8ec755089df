"""Analysis endpoints on bars the pipeline stored: numbers checked against numpy / statsmodels on the same closes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import coint

from shared.research.backtest import run_backtest
from shared.research.execution import CostModel, ExecutionParams
from shared.research.pair_bars import PairBars
from shared.research.signals import SignalParams
from tests.api.conftest import PAIR

TF = "1s"


def _closes(db) -> pd.DataFrame:
    """Aligned closes of both legs straight from the bars table (inner join on the bucket start)."""
    frames = {}
    for inst in (PAIR.y.id, PAIR.x.id):
        rows = db.execute("SELECT ts, close FROM bars WHERE instrument = %s AND timeframe = %s ORDER BY ts",
                          (inst, TF)).fetchall()  # fmt: skip
        frames[inst] = pd.Series([r[1] for r in rows], index=[r[0] for r in rows])
    return pd.concat(frames, axis=1, join="inner").sort_index()


def test_correlation_matrix_equals_numpy_on_stored_closes(client, pipeline, db):
    closes = _closes(db)
    r = client.get("/api/v1/analysis/correlation", params={"instruments": f"{PAIR.y.id},{PAIR.x.id}", "timeframe": TF})
    body = r.json()
    assert r.status_code == 200, body
    assert body["n"] == len(closes) and body["instruments"] == [PAIR.y.id, PAIR.x.id]
    expected = np.corrcoef(np.diff(np.log(closes.to_numpy()), axis=0), rowvar=False)  # oracle: numpy
    np.testing.assert_allclose(np.array(body["matrix"], dtype=float), expected, rtol=1e-12, atol=1e-12)
    levels = client.get("/api/v1/analysis/correlation", params={
        "instruments": f"{PAIR.y.id},{PAIR.x.id}", "timeframe": TF, "on": "prices", "method": "spearman"}).json()
    expected = closes.corr(method="spearman").to_numpy()  # oracle: pandas rank correlation
    np.testing.assert_allclose(np.array(levels["matrix"], dtype=float), expected, rtol=1e-12)


def test_cointegration_matrix_equals_statsmodels_coint(client, pipeline, db):
    closes = _closes(db)
    body = client.get("/api/v1/analysis/cointegration",
                      params={"instruments": f"{PAIR.y.id},{PAIR.x.id}", "timeframe": TF}).json()  # fmt: skip
    y, x = closes[PAIR.y.id].to_numpy(), closes[PAIR.x.id].to_numpy()
    # oracle: statsmodels Engle-Granger (constant, AIC lag), tolerance 1e-6 relative on the p-value
    assert body["matrix"][0][1] == pytest.approx(coint(y, x, trend="c", autolag="aic")[1], rel=1e-6)
    assert body["matrix"][1][0] == pytest.approx(coint(x, y, trend="c", autolag="aic")[1], rel=1e-6)
    assert body["matrix"][0][0] is None and "regressed on" in body["orientation"]


def test_pair_report_from_the_database_matches_statsmodels(client, pipeline, db):
    closes = _closes(db)
    req = {"source": {"y": PAIR.y.id, "x": PAIR.x.id, "timeframe": TF}, "window": 30, "methods": ["ols", "huber"]}
    r = client.post("/api/v1/analysis", json=req)
    body = r.json()
    assert r.status_code == 200, body
    assert body["n"] == len(closes) and body["source"]["kind"] == "database"
    y, x = closes[PAIR.y.id].to_numpy(), closes[PAIR.x.id].to_numpy()
    fit = sm.OLS(y, sm.add_constant(x)).fit()  # oracle: statsmodels OLS, tolerance 1e-9 relative
    assert body["report"]["hedge"]["ols"]["beta"] == pytest.approx(fit.params[1], rel=1e-9)
    assert body["report"]["hedge"]["ols"]["alpha"] == pytest.approx(fit.params[0], rel=1e-9)
    assert set(body["report"]["hedge"]) == {"ols", "huber"}
    assert body["report"]["engle_granger"]["y_on_x"]["pvalue"] == pytest.approx(coint(y, x)[1], rel=1e-6)


def test_pair_report_on_inline_series(client, db):
    rng = np.random.default_rng(4)
    x = 100 + np.cumsum(rng.normal(0, 1, 200))
    y = 5 + 0.5 * x + rng.normal(0, 0.3, 200)
    body = client.post("/api/v1/analysis", json={"y": y.tolist(), "x": x.tolist(), "window": 20,
                                                 "methods": ["ols"]}).json()  # fmt: skip
    fit = sm.OLS(y, sm.add_constant(x)).fit()  # oracle: statsmodels OLS
    assert body["source"] == {"kind": "inline", "timeframe": "1m"} and body["n"] == 200
    assert body["report"]["hedge"]["ols"]["beta"] == pytest.approx(fit.params[1], rel=1e-9)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"y": [1.0] * 40, "x": [2.0] * 39}, "body"),
        ({"y": [1.0] * 40}, "body"),
        ({}, "body"),
        ({"y": [1.0] * 40, "x": [-2.0] * 40}, "body.x.0"),
        ({"y": [1.0] * 10, "x": [2.0] * 10}, "body.y"),
        ({"source": {"y": "sim.AAA", "x": "sim.BBB", "timeframe": "7m"}}, "body.source.timeframe"),
        ({"source": {"y": "sim.AAA", "x": "sim.BBB"}}, "instruments"),
        ({"y": list(np.linspace(1, 2, 40)), "x": list(np.linspace(2, 3, 40)), "window": 40}, "window"),
    ],
)
def test_bad_analysis_requests_name_the_field(client, db, body, field):
    r = client.post("/api/v1/analysis", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field


def test_backtest_on_stored_bars_equals_the_library_run(client, pipeline, db):
    req = {"source": {"y": PAIR.y.id, "x": PAIR.x.id, "timeframe": TF},
           "signal": {"window": 30, "entry": 1.5, "exit": 0.3, "stop": None}, "execution": {"fill": "close"},
           "costs": {"taker_fee_bps": 2.0}, "max_points": 50}  # fmt: skip
    r = client.post("/api/v1/research/backtest", json=req)
    body = r.json()
    assert r.status_code == 200, body
    frames = {}
    for inst in (PAIR.y.id, PAIR.x.id):
        rows = db.execute("SELECT (extract(epoch FROM ts) * 1000000)::bigint, open, high, low, close FROM bars "
                          "WHERE instrument = %s AND timeframe = %s ORDER BY ts", (inst, TF)).fetchall()  # fmt: skip
        frames[inst] = pd.DataFrame(rows, columns=["ts_us", "open", "high", "low", "close"]).set_index("ts_us")
    ref = run_backtest(PairBars.from_frames(frames[PAIR.y.id], frames[PAIR.x.id]),
                       SignalParams(window=30, entry=1.5, exit=0.3, stop=float("inf")),
                       ExecutionParams(fill="close"), CostModel(taker_fee_bps=2.0), timeframe=TF)  # fmt: skip
    assert body["n"] == len(ref.ts_us)
    assert len(body["trades"]) == len(ref.trades) > 0
    assert body["stats"]["net_pnl"] == pytest.approx(ref.stats.net_pnl, rel=1e-12)
    assert len(body["curve"]["equity"]) <= 50
    assert body["curve"]["equity"][-1] == pytest.approx(float(ref.equity[-1]), rel=1e-12)
    assert body["curve"]["ts_us"][-1] == int(ref.ts_us[-1])


def test_screen_and_backtest_errors(client, pipeline, db):
    body = client.post("/api/v1/research/screen", json={"instruments": [PAIR.y.id, PAIR.x.id], "timeframe": TF}).json()
    assert body["n_bars"] == len(_closes(db)) and len(body["table"]) == 1
    row = body["table"][0]
    assert {row["a"], row["b"]} == {PAIR.y.id, PAIR.x.id}
    bad = client.post("/api/v1/research/backtest", json={
        "source": {"y": PAIR.y.id, "x": PAIR.x.id, "timeframe": TF}, "signal": {"entry": 1.0, "exit": 2.0}})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "signal"
    dup = client.post("/api/v1/research/screen", json={"instruments": [PAIR.y.id, PAIR.y.id]})
    assert dup.json()["detail"]["field"] == "body.instruments"
