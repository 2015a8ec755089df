"""Automatic assignment of pairs to live workers: bounded-load rendezvous hashing.

Every worker computes the same assignment from the same inputs (the enabled pairs and the live
members), with no coordination. Each pair ranks the members by a hash of (pair, member) and goes
to the best-ranked member that still has room; room is ceil(pairs / members), so shares differ by
at most one. When a member joins or leaves, mostly only the pairs it gains or loses move. Leases
(leases.py) keep the hand-over safe while members briefly disagree about membership.
"""

from __future__ import annotations

import hashlib
import math


def _weight(pair: str, member: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{pair}\x00{member}".encode(), digest_size=8).digest(), "big")


def assign(pairs: list[str], members: list[str]) -> dict[str, str]:
    """pair -> member (empty when there are no members)."""
    members = sorted(set(members))
    if not members:
        return {}
    room = math.ceil(len(pairs) / len(members))
    load = dict.fromkeys(members, 0)
    out: dict[str, str] = {}
    for pair in sorted(set(pairs)):
        for member in sorted(members, key=lambda m: (-_weight(pair, m), m)):
            if load[member] < room:
                out[pair] = member
                load[member] += 1
                break
    return out


def my_share(pairs: list[str], members: list[str], me: str) -> set[str]:
    if me not in members:
        members = [*members, me]
    return {p for p, m in assign(pairs, members).items() if m == me}
