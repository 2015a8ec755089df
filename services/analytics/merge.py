"""Event-time merge of a pair's two tick streams.

Ticks of each leg arrive in order on their own stream, at different speeds. A tick is released
only when the other leg has shown a later tick (so every tick before it, on both legs, has been
released already), or when the other leg is idle: its stream is drained and the estimated event
clock has moved ``idle_grace_us`` past the tick. Ties in event time release the y leg first.
The release order therefore depends only on the ticks, not on how reads interleave.
"""

from __future__ import annotations

from collections import deque

from shared.messages import Tick

Y, X = 0, 1


class TwoLegMerger:
    def __init__(self, idle_grace_us: int) -> None:
        self.idle_grace_us = idle_grace_us
        self.queues: tuple[deque[tuple[str, Tick]], deque[tuple[str, Tick]]] = (deque(), deque())

    def push(self, leg: int, entry_id: str, tick: Tick) -> None:
        self.queues[leg].append((entry_id, tick))

    def pending(self) -> int:
        return len(self.queues[Y]) + len(self.queues[X])

    def head_ts(self) -> int | None:
        """Event time of the next tick to release (the older of the two queue heads)."""
        heads = [q[0][1].ts_event_us for q in self.queues if q]
        return min(heads) if heads else None

    def release(self, drained: tuple[bool, bool], clock_us: int | None):
        """Yield ``(leg, entry_id, tick)`` in merged event-time order as far as it is safe.

        ``drained[leg]`` says that leg's stream had nothing more to read; ``clock_us`` is the
        estimated current event time (None: no idle release).
        """
        qy, qx = self.queues
        while qy or qx:
            if qy and qx:
                leg = Y if qy[0][1].ts_event_us <= qx[0][1].ts_event_us else X
            else:
                leg = Y if qy else X
                other = 1 - leg
                head_ts = self.queues[leg][0][1].ts_event_us
                if not drained[other] or clock_us is None or head_ts > clock_us - self.idle_grace_us:
                    return
            entry_id, tick = self.queues[leg].popleft()
            yield leg, entry_id, tick
