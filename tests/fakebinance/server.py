"""``FakeBinance``: the local Binance stand-in, running on its own thread and event loop.

    with FakeBinance(tapes, preload=100) as fb:
        settings = LiveSettings(**fb.live_settings(), ...)
        fb.play(rate_per_s=200)
        fb.drop_connections()          # abrupt close (1006), like a network cut
        fb.silence(True)               # socket stays open, nothing is sent
        fb.skip_ids("binance-spot", "btcusdt@trade", 3735693100, 3735693120)
        fb.throttle(429, retry_after_s=1.0)
        fb.server_shutdown()

Three sockets on 127.0.0.1 with free ports: spot WebSocket, USD-M WebSocket, and one REST server
(spot ``/api/v3``, USD-M ``/fapi/v1`` and dumps under ``/data``). The control methods are thread-safe:
they run on the server loop and return its result.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import orjson
import uvicorn
from websockets.asyncio.server import serve

from tests.fakebinance.exchange import Exchange, RestCall
from tests.fakebinance.restapp import build_app
from tests.fakebinance.tapes import SPOT, USDM, Tape
from tests.fakebinance.wsserver import WsEndpoint

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeBinance:
    def __init__(self, tapes: list[Tape], preload: int = 0, ping_interval_s: float = 20.0,
                 ping_timeout_s: float = 60.0) -> None:
        self.exchange = Exchange(tapes)
        self.exchange.preload(preload)
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.spot_ws_url = ""
        self.usdm_ws_url = ""
        self.rest_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FakeBinance:
        self._thread = threading.Thread(target=self._thread_main, name="fake-binance", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("fake binance did not start within 15 s")
        if self._error is not None:
            raise RuntimeError(f"fake binance failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(15)

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        spot = WsEndpoint(self.exchange, SPOT, self.ping_interval_s, self.ping_timeout_s)
        usdm = WsEndpoint(self.exchange, USDM, self.ping_interval_s, self.ping_timeout_s)
        kwargs: dict[str, Any] = {"ping_interval": None, "compression": None, "max_queue": 64}
        async with serve(spot.handle, "127.0.0.1", 0, **kwargs) as spot_server, \
                serve(usdm.handle, "127.0.0.1", 0, **kwargs) as usdm_server:
            self.spot_ws_url = f"ws://127.0.0.1:{_port(spot_server)}"
            self.usdm_ws_url = f"ws://127.0.0.1:{_port(usdm_server)}"
            port = _free_port()
            config = uvicorn.Config(build_app(self.exchange), host="127.0.0.1", port=port, log_level="warning",
                                    lifespan="off", access_log=False)
            rest = uvicorn.Server(config)
            rest_task = asyncio.create_task(rest.serve())
            while not rest.started:
                if rest_task.done():
                    raise RuntimeError("uvicorn exited during start-up")
                await asyncio.sleep(0.01)
            self.rest_url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stopping.wait()
            self.exchange.pause()
            for client in list(self.exchange.clients):
                client.ws.transport.abort()
            rest.should_exit = True
            await rest_task

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server loop and return its result (thread-safe)."""
        assert self._loop is not None, "start() first"
        fut: Future[T] = Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return fut.result(10)

    # -- what a client needs --------------------------------------------------------------------------
    def live_settings(self) -> dict[str, Any]:
        """LiveSettings fields pointing every endpoint at this server."""
        return {"spot_ws_base_url": self.spot_ws_url, "usdm_ws_base_url": self.usdm_ws_url,
                "spot_rest_base_url": self.rest_url, "usdm_rest_base_url": self.rest_url}

    # -- the clock -----------------------------------------------------------------------------------
    def play(self, rate_per_s: float | None) -> None:
        """Release trades at ``rate_per_s`` per tape (None: as fast as possible)."""
        self.call(lambda: self.exchange.play(rate_per_s))

    def pause(self) -> None:
        self.call(self.exchange.pause)

    def finished(self) -> bool:
        return self.call(self.exchange.finished)

    def wait_finished(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.finished():
            if time.monotonic() > deadline:
                raise TimeoutError("tapes not finished")
            time.sleep(0.02)

    def released(self, venue: str, stream: str) -> list[dict[str, Any]]:
        return self.call(lambda: list(self.exchange.tapes[(venue, stream)].released_payloads()))

    def tape(self, venue: str, stream: str) -> Tape:
        return self.exchange.tapes[(venue, stream)]

    # -- faults ----------------------------------------------------------------------------------------
    def drop_connections(self, venue: str | None = None) -> int:
        """Cut every socket (of ``venue``) without a close frame, as a network failure does."""
        def cut() -> int:
            victims = [c for c in self.exchange.clients if venue is None or c.venue == venue]
            for client in victims:
                client.ws.transport.abort()
            return len(victims)
        return self.call(cut)

    def silence(self, on: bool, venue: str | None = None, stream: str | None = None) -> None:
        """Stop (or resume) sending frames while keeping sockets open and answering pings."""
        def apply() -> None:
            if stream is None:
                self.exchange.silence_all = on
            elif on:
                self.exchange.silenced.add((venue or SPOT, stream))
            else:
                self.exchange.silenced.discard((venue or SPOT, stream))
        self.call(apply)

    def skip_ids(self, venue: str, stream: str, first: int, last: int) -> None:
        """Never send trade ids ``first..last`` of ``stream`` on any socket (REST still has them)."""
        self.call(lambda: self.exchange.skipped.setdefault((venue, stream), []).append((first, last)))

    def hide_from_rest(self, venue: str, stream: str, first: int, last: int) -> None:
        """REST never returns trade ids ``first..last`` of ``stream`` (as if Binance lost them)."""
        self.call(lambda: self.exchange.rest_hidden.setdefault((venue, stream), []).append((first, last)))

    def weight_used(self) -> int:
        return self.call(lambda: self.exchange.weight_used)

    def throttle(self, status: int = 429, retry_after_s: float = 1.0, count: int = 1) -> None:
        """The next ``count`` REST calls answer ``status`` with ``Retry-After``."""
        self.call(lambda: self.exchange.throttles.extend([(status, retry_after_s)] * count))

    def rest_calls(self) -> list[RestCall]:
        return self.call(lambda: list(self.exchange.rest_log))

    def inject(self, text: str, venue: str | None = None) -> int:
        """Send ``text`` as one frame to every socket (of ``venue``); returns how many got it."""
        return self.call(lambda: self.exchange.broadcast(text, venue))

    def server_shutdown(self, venue: str | None = None, close_after_s: float = 0.5) -> int:
        """Send Binance's ``serverShutdown`` event, then close those sockets after ``close_after_s``."""
        def announce() -> int:
            victims = [c for c in self.exchange.clients if venue is None or c.venue == venue]
            event = orjson.dumps({"e": "serverShutdown", "E": int(time.time() * 1000)}).decode()
            for client in victims:
                client.queue.append(event)
                client.wake.set()
            loop = asyncio.get_running_loop()
            for client in victims:
                loop.call_later(close_after_s, lambda c=client: asyncio.ensure_future(c.ws.close(1001, "shutdown")))
            return len(victims)
        return self.call(announce)

    def break_dump(self, file_name: str) -> None:
        """Serve corrupted bytes for dump ``file_name`` (its .CHECKSUM stays the published one)."""
        self.call(lambda: self.exchange.broken_dumps.add(file_name))

    def clients(self) -> list[dict[str, Any]]:
        def info() -> list[dict[str, Any]]:
            return [{"venue": c.venue, "route": c.route, "streams": list(c.streams), "pings": c.pings,
                     "pongs": c.pongs, "sent": c.sent, "open": c in self.exchange.clients}
                    for c in [*self.exchange.clients, *self.exchange.closed_clients]]
        return self.call(info)


def _port(server: Any) -> int:
    return next(iter(server.sockets)).getsockname()[1]
