"""Pair ownership: one lease per pair in Redis, with fencing tokens.

* ``acquire``: ``SET lease:{pair} <instance> NX PX ttl``; on success the fencing token is
  ``INCR fence:{pair}`` — strictly larger than any earlier owner's.
* ``renew``: extend only if the lease still names us (Lua, atomic); a lease we could not renew is
  lost and the pair must be dropped at once.
* The token is written into the database with every batch (see store.py); a writer holding an
  older token than the stored one is refused, so a worker that was frozen past its TTL and wakes
  up can never overwrite its successor's work. Locally, a worker also stops writing for a pair
  once ``valid_until`` (last renewal + TTL - margin) has passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from shared.streams import Keys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
"""


@dataclass
class Lease:
    pair: str
    token: int
    valid_until: float  # monotonic seconds


class LeaseManager:
    def __init__(self, r: redis.Redis, keys: Keys, instance: str, ttl_s: float, margin_s: float | None = None) -> None:
        self.r = r
        self.keys = keys
        self.instance = instance
        self.ttl_ms = int(ttl_s * 1000)
        self.margin_s = ttl_s / 5 if margin_s is None else margin_s
        self.held: dict[str, Lease] = {}
        self._renew = r.register_script(_RENEW)
        self._release = r.register_script(_RELEASE)

    def _valid_until(self, started: float) -> float:
        return started + self.ttl_ms / 1000 - self.margin_s

    def acquire(self, pair: str) -> Lease | None:
        started = time.monotonic()
        if not self.r.set(self.keys.lease(pair), self.instance, nx=True, px=self.ttl_ms):
            return None
        token = int(self.r.incr(self.keys.fence(pair)))
        lease = Lease(pair, token, self._valid_until(started))
        self.held[pair] = lease
        return lease

    def renew_all(self) -> list[str]:
        """Renew every held lease; returns the pairs whose lease was lost (and forgets them)."""
        if not self.held:
            return []
        started = time.monotonic()
        pipe = self.r.pipeline(transaction=False)
        pairs = list(self.held)
        for pair in pairs:
            self._renew(keys=[self.keys.lease(pair)], args=[self.instance, self.ttl_ms], client=pipe)
        lost = []
        for pair, ok in zip(pairs, pipe.execute(), strict=True):
            if ok:
                self.held[pair].valid_until = self._valid_until(started)
            else:
                lost.append(pair)
                del self.held[pair]
        return lost

    def release(self, pair: str) -> None:
        self.held.pop(pair, None)
        self._release(keys=[self.keys.lease(pair)], args=[self.instance])

    def owner(self, pair: str) -> str | None:
        value = self.r.get(self.keys.lease(pair))
        return value.decode() if value else None
