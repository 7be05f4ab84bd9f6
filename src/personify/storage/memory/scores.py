"""In-memory ``ScoreStore``: the reference behaviour for model scores per profile."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from personify.errors import InvalidInput, Problem


def checked_scores(model: str, scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """The ``(profile_id, value)`` pairs to store; refuses empty names and non-finite values.

    Shared by every adapter so they refuse the same inputs with the same message.
    """
    problems = []
    if not model:
        problems.append(Problem("model", "must be a non-empty model name"))
    pairs = []
    for pid, value in scores.items():
        number = float(value)
        if not pid:
            problems.append(Problem("scores", "a profile id is empty"))
        elif not math.isfinite(number):
            problems.append(Problem(f"scores.{pid}", f"{value!r} is not a finite number"))
        pairs.append((pid, number))
    if problems:
        raise InvalidInput(
            f"cannot store scores of model {model!r}",
            hint="scores are finite numbers keyed by profile id",
            problems=problems[:20],
        )
    return pairs


class MemoryScoreStore:
    """Scores in a dict ``{profile_id: {model: {"value", "version", "at"}}}`` (not durable)."""

    def __init__(self) -> None:
        self._scores: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, model: str, version: int, scores: Mapping[str, float], at: str) -> None:
        pairs = checked_scores(model, scores)
        with self._lock:
            for pid, value in pairs:
                self._scores.setdefault(pid, {})[model] = {
                    "value": value,
                    "version": int(version),
                    "at": at,
                }

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        with self._lock:
            return {
                pid: {m: dict(s) for m, s in self._scores[pid].items()}
                for pid in dict.fromkeys(profile_ids)
                if pid in self._scores
            }

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        removed = 0
        with self._lock:
            for pid in dict.fromkeys(profile_ids):
                removed += len(self._scores.pop(pid, {}))
        return removed

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return sum(len(s) for s in self._scores.values())
            return sum(model in s for s in self._scores.values())

    def close(self) -> None:
        pass
