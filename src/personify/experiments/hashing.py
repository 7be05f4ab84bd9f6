"""GrowthBook-compatible bucketing: FNV-1a hashing, bucket ranges and variation choice.

Assignment must agree, bit for bit, with every GrowthBook SDK, so that an experiment
started in personify and read by a GrowthBook client (or the reverse) puts each user in the
same variation. The rules are GrowthBook's:

* the hash is 32-bit FNV-1a (offset ``0x811c9dc5``, prime ``0x01000193``) over **UTF-16 code
  units**, as JavaScript's ``charCodeAt`` sees a string, not over UTF-8 bytes;
* version 1: ``fnv(value + seed) % 1000 / 1000``; version 2:
  ``fnv(str(fnv(seed + value))) % 10000 / 10000``; any other version gives ``None``;
* a variation owns ``[start, start + coverage * weight)`` of the unit interval.

>>> gb_hash("seed", "a", 2), gb_hash("", "a", 1), gb_hash("abc", "def", 99) is None
(0.0505, 0.22, True)
>>> bucket_ranges(2, 0.5)
[(0.0, 0.25), (0.5, 0.75)]
>>> choose_variation(0.6, bucket_ranges(2, 0.5))
1
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Final

FNV_OFFSET: Final = 0x811C9DC5
FNV_PRIME: Final = 0x01000193
_MASK: Final = 0xFFFFFFFF

Range = tuple[float, float]


def _code_units(text: str) -> bytes | list[int]:
    """The UTF-16 code units of ``text``: its bytes when it is Latin-1 (the common, fast case)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raw = text.encode("utf-16-le")
        return [raw[i] | (raw[i + 1] << 8) for i in range(0, len(raw), 2)]


def fnv1a32(text: str, state: int = FNV_OFFSET) -> int:
    """32-bit FNV-1a of ``text`` read as UTF-16 code units, continuing from ``state``.

    Passing the state reached after a prefix lets callers hash ``prefix + text`` without
    re-hashing the prefix (an experiment's seed is hashed once, not per user).

    >>> fnv1a32("a") == 0xE40C292C
    True
    """
    h = state
    try:
        units: bytes | list[int] = text.encode("latin-1")  # code units < 256: one byte each
    except UnicodeEncodeError:
        units = _code_units(text)
    for unit in units:
        h = ((h ^ unit) * FNV_PRIME) & _MASK
    return h


@lru_cache(maxsize=4096)
def seed_state(seed: str) -> int:
    """The FNV state after hashing ``seed`` (cached: seeds are experiment keys, few and reused)."""
    return fnv1a32(seed)


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash(seed, value, version)``: in [0, 1), or None for an unknown version."""
    if version == 2:
        inner = fnv1a32(value, seed_state(seed))
        return fnv1a32(str(inner)) % 10000 / 10000
    if version == 1:
        return fnv1a32(seed, fnv1a32(value)) % 1000 / 1000
    return None


def bucketer(seed: str, version: int) -> Callable[[str], float | None]:
    """``gb_hash`` with ``seed`` and ``version`` fixed, as one tight function per experiment.

    The seed's FNV state is computed once and the loops use local names only: assignment
    sits on the request path of every decision, so it is worth the repetition.
    """
    if version == 2:
        state = fnv1a32(seed)

        def v2(value: str, state: int = state, prime: int = FNV_PRIME, mask: int = _MASK) -> float:
            h = state
            try:
                units: bytes | list[int] = value.encode("latin-1")
            except UnicodeEncodeError:
                units = _code_units(value)
            for unit in units:
                h = ((h ^ unit) * prime) & mask
            outer = FNV_OFFSET
            for digit in str(h).encode("ascii"):
                outer = ((outer ^ digit) * prime) & mask
            return outer % 10000 / 10000

        return v2
    if version == 1:
        return lambda value: fnv1a32(seed, fnv1a32(value)) % 1000 / 1000
    return lambda value: None


def equal_weights(count: int) -> list[float]:
    """``count`` equal weights summing to one; empty for zero or fewer variations."""
    if count <= 0:
        return []
    return [1.0 / count] * count


def bucket_ranges(
    count: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[Range]:
    """The slice of [0, 1) each variation owns.

    Coverage is clamped to [0, 1]; weights that are missing, of the wrong length or that do
    not sum to 1 (within 0.01) are replaced by equal weights, exactly as GrowthBook does, so
    a bad configuration degrades to an even split rather than to an error at serving time.
    """
    coverage = min(1.0, max(0.0, coverage))
    chosen = list(weights) if weights is not None else []
    if len(chosen) != count or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal_weights(count)
    ranges: list[Range] = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def in_range(n: float, bounds: Sequence[float]) -> bool:
    """Half-open membership: ``start <= n < end``."""
    return bounds[0] <= n < bounds[1]


def choose_variation(n: float, ranges: Sequence[Sequence[float]]) -> int:
    """The index of the range holding ``n``, or -1 when ``n`` falls outside the coverage."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(hash_value: str, namespace: Sequence[Any]) -> bool:
    """Whether a user falls in ``[name, start, end)`` (exclusive experiments share a name)."""
    name, start, end = namespace
    n = gb_hash(f"__{name}", hash_value, 1)
    assert n is not None  # version 1 always hashes
    return float(start) <= n < float(end)
