"""Reconnect delays: exponential with jitter, reset after a healthy connection."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def backoff_delay(
    attempt: int, initial_s: float, factor: float, max_s: float, jitter: float, rnd: float
) -> float:
    """Delay before reconnect number ``attempt`` (0-based).

    The cap is ``min(max_s, initial_s * factor**attempt)``; a ``jitter`` fraction of it is drawn
    from ``rnd`` in [0, 1) so that many clients cut at the same instant do not reconnect in step
    (the "reconnect storm" of DOMAIN_NOTES 3.1). ``jitter=1`` is AWS's "full jitter".
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    cap = min(max_s, initial_s * factor ** min(attempt, 64))
    return cap * (1.0 - jitter) + cap * jitter * rnd


@dataclass
class Backoff:
    initial_s: float
    factor: float
    max_s: float
    jitter: float
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        delay = backoff_delay(self.attempt, self.initial_s, self.factor, self.max_s, self.jitter, self.rng.random())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
