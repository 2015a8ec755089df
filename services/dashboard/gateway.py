"""Client of the FastAPI gateway: short timeouts, and every failure mapped to one of three errors.

* ``GatewayDown``: no answer (refused, timed out) or a 5xx other than 503-not-installed — the page
  says the gateway is unreachable and the next refresh tries again.
* ``NotAvailable``: the gateway answers but does not offer the endpoint (an unknown route, or a 503
  saying an analytics module is not installed) — the panel says "not available from the gateway".
* ``Rejected``: a 4xx about the request; ``problems`` holds readable ``field: problem`` lines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from services.dashboard.timefmt import to_us

API = "/api/v1"
INGEST_RATE_METRIC = "pairs_ingest_ticks_per_second"


class GatewayError(Exception):
    """Base of the dashboard's view of gateway failures."""

    def __init__(self, message: str, problems: list[str] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or [message]
        self.status = status


class GatewayDown(GatewayError):
    """The gateway did not answer in time, or failed on its side."""


class NotAvailable(GatewayError):
    """The gateway has no such endpoint (yet), or the computation behind it is not installed."""


class Rejected(GatewayError):
    """The gateway refused the request (validation, auth, not found)."""


def problems_of(detail: Any) -> list[str]:
    """Readable lines from the gateway's error shapes: {field, problem}, FastAPI's list, or a string."""
    if isinstance(detail, dict):
        field, problem = detail.get("field"), detail.get("problem") or detail.get("msg") or str(detail)
        lines = [f"{field}: {problem}" if field else str(problem)]
        for row in detail.get("errors") or []:  # upload: per-line report of a file with no valid row
            if isinstance(row, dict) and "line" in row:
                lines.append(f"line {row['line']}: {row.get('problem', '')}")
        return lines
    if isinstance(detail, list):
        lines = []
        for item in detail:
            if not isinstance(item, dict):
                lines.append(str(item))
                continue
            loc = item.get("field") or ".".join(str(p) for p in item.get("loc", []) if p != "body")
            msg = item.get("problem") or item.get("msg") or "invalid"
            pos = (item.get("ctx") or {}).get("position")
            if pos and "column" not in msg:
                msg = f"{msg} (column {pos})"
            lines.append(f"{loc}: {msg}" if loc else str(msg))
        return lines or ["invalid request"]
    return [str(detail)]


def feed_mode(name: str, status: Any) -> str:
    """live / replay / simulated from a feed's status body (``mode``) or, as ingest names them, its feed name."""
    if isinstance(status, dict) and isinstance(status.get("mode"), str):
        return status["mode"].lower()
    lowered = name.lower()
    for mode in ("simulated", "replay", "live"):
        if mode in lowered:
            return mode
    return "unknown"


def prometheus_gauge(text: str, name: str, label: str) -> dict[str, float]:
    """{label value: sample} of one metric in Prometheus exposition text."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels, _, value = line[len(name) + 1:].rpartition("} ")
        for part in labels.split(","):
            key, _, quoted = part.partition("=")
            if key.strip() == label:
                try:
                    out[quoted.strip().strip('"')] = float(value)
                except ValueError:
                    pass
    return out


def _iso(ts_us: int | None) -> str | None:
    if ts_us is None:
        return None
    seconds, micros = divmod(ts_us, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros).isoformat()


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text[:300]


class Gateway:
    """Thread-safe (one ``httpx.Client``); every call raises a ``GatewayError`` subclass or returns JSON."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 3.0,
                 compute_timeout_s: float = 60.0) -> None:
        headers = {"X-API-Token": token} if token else {}
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.compute_timeout_s = compute_timeout_s
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, slow: bool = False, **kwargs: Any) -> httpx.Response:
        timeout = self.compute_timeout_s if slow else self.timeout_s
        try:
            response = self._http.request(method, path, timeout=timeout, **kwargs)
        except httpx.TimeoutException:
            raise GatewayDown(f"gateway did not answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise GatewayDown(f"gateway unreachable at {self.base_url} ({type(exc).__name__})") from None
        if response.status_code < 400:
            return response
        detail = _detail(response)
        status = response.status_code
        if status in (404, 405) and detail in ("Not Found", "Method Not Allowed"):
            raise NotAvailable(f"{method} {path} is not available from the gateway", status=status)
        if status == 503 and "not installed" in str(detail):
            raise NotAvailable(f"not available from the gateway: {problems_of(detail)[0]}", status=status)
        if status >= 500:
            raise GatewayDown(f"gateway error {status}: {problems_of(detail)[0]}", status=status)
        problems = problems_of(detail)
        raise Rejected(f"gateway refused the request ({status}): {problems[0]}", problems, status)

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", API + path, params=clean).json()

    def post(self, path: str, body: Any = None, *, slow: bool = False) -> Any:
        response = self.request("POST", API + path, json=body, slow=slow)
        return response.json() if response.content else None

    # --- endpoints used by the pages ------------------------------------------------------
    def health(self) -> bool:
        return self.request("GET", "/health").json().get("status") == "ok"

    def pairs(self) -> list[dict]:
        return self.get("/pairs")["data"]

    def instruments(self) -> list[dict]:
        return self.get("/instruments")["data"]

    def bars(self, instrument: str, timeframe: str, start_us: int | None = None, limit: int = 5000,
             max_points: int = 2000) -> list[dict]:
        """Bars oldest first, each with ``ts_us``; the gateway merges buckets above ``max_points``."""
        body = self.get("/bars", instrument=instrument, timeframe=timeframe, limit=limit, max_points=max_points,
                        **{"from": _iso(start_us)})
        return [{**row, "ts_us": to_us(row["ts"])} for row in body["data"]]

    def metrics(self, pair: str, timeframe: str, start_us: int | None = None, limit: int = 2000) -> list[dict]:
        """Metric rows oldest first, each with ``ts_us``."""
        body = self.get("/metrics", pair=pair, timeframe=timeframe, limit=limit, **{"from": _iso(start_us)})
        return [{**row, "ts_us": to_us(row["ts"])} for row in body["data"]]

    def snapshot(self) -> list[dict]:
        return self.get("/snapshot")["data"]

    def system(self) -> dict:
        return self.get("/system")

    def ingest_rates(self) -> dict[str, float]:
        """Ticks/s per instrument from the gateway's Prometheus text (``pairs_ingest_ticks_per_second``)."""
        return prometheus_gauge(self.request("GET", "/metrics").text, INGEST_RATE_METRIC, "instrument")

    def analysis(self, body: dict) -> dict:
        return self.post("/analysis", body, slow=True)

    def matrix(self, kind: str, instruments: list[str], timeframe: str, max_bars: int) -> dict:
        response = self.request("GET", f"{API}/analysis/{kind}", slow=True, params={
            "instruments": ",".join(instruments), "timeframe": timeframe, "max_bars": max_bars})
        return response.json()

    def screen(self, body: dict) -> dict:
        return self.post("/research/screen", body, slow=True)

    def backtest(self, body: dict) -> dict:
        return self.post("/research/backtest", body, slow=True)

    def rules(self) -> list[dict]:
        return self.get("/alerts/rules", limit=1000)["data"]

    def create_rule(self, body: dict) -> dict:
        return self.post("/alerts/rules", body)

    def replace_rule(self, rule_id: int, body: dict) -> dict:
        return self.request("PUT", f"{API}/alerts/rules/{rule_id}", json=body).json()

    def set_rule_enabled(self, rule_id: int, enabled: bool) -> dict:
        return self.post(f"/alerts/rules/{rule_id}/{'enable' if enabled else 'disable'}")

    def delete_rule(self, rule_id: int) -> None:
        self.request("DELETE", f"{API}/alerts/rules/{rule_id}")

    def events(self, **filters: Any) -> dict:
        return self.get("/alerts/events", **filters)

    def export_csv(self, kind: str, **params: Any) -> tuple[str, bytes]:
        """(file name, CSV bytes) of ``/export/{kind}.csv``."""
        clean = {k: v for k, v in params.items() if v is not None}
        response = self.request("GET", f"{API}/export/{kind}.csv", slow=True, params=clean)
        disposition = response.headers.get("content-disposition", "")
        name = disposition.split("filename=")[-1].strip('"') if "filename=" in disposition else f"{kind}.csv"
        return name, response.content

    def upload(self, kind: str, filename: str, content: bytes, **params: Any) -> dict:
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        response = self.request("POST", f"{API}/upload/{kind}", slow=True, params=clean,
                                files={"file": (filename, content, "text/csv")})
        return response.json()
