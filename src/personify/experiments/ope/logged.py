"""Off-policy evaluation of a simple target policy on personify's own decision logs.

A log is a frame with one row per decision: the action shown (``action``, a variant or
content key), the logged ``propensity`` of that action, and the attributed ``reward``
(0 when nothing came back). The target policy is a fixed distribution over actions,
written as a short spec:

* ``uniform``: every logged action equally;
* ``arm:<key>``: always ``<key>`` (what would have happened had we shipped it);
* ``weights:a=0.7,b=0.3``: a fixed split.

DR uses a cross-fitted reward model: each action's mean reward on the other half of the log.

>>> import pandas as pd
>>> log = pd.DataFrame({"action": ["a", "b", "a", "b"], "propensity": 0.5, "reward": [1, 0, 1, 0]})
>>> round(evaluate_log(log, "arm:a")["ipw"].value, 3)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from personify.errors import InvalidInput, Problem
from personify.experiments.ope.estimators import Estimate, doubly_robust, ipw, snipw

REQUIRED = ("action", "propensity", "reward")


def parse_target(spec: str, actions: list[str]) -> dict[str, float]:
    """The target distribution a spec names (see the module docstring)."""
    if spec == "uniform":
        return {a: 1 / len(actions) for a in actions}
    if spec.startswith("arm:"):
        arm = spec[4:]
        if arm not in actions:
            raise InvalidInput(
                f"{arm!r} never appears in the log",
                hint=f"choose one of: {', '.join(actions)}",
                problems=[Problem("target", "unknown arm")],
            )
        return {a: float(a == arm) for a in actions}
    if spec.startswith("weights:"):
        weights: dict[str, float] = {}
        for part in spec[8:].split(","):
            name, _, value = part.partition("=")
            try:
                weights[name.strip()] = float(value)
            except ValueError:
                raise InvalidInput(
                    f"cannot read the weight in {part!r}",
                    hint="write weights:a=0.7,b=0.3",
                    problems=[Problem("target", "bad weight")],
                ) from None
        largest = max(weights.values())
        if not all(math.isfinite(w) and w >= 0 for w in weights.values()) or largest <= 0:
            raise InvalidInput(
                "weights must be finite, non-negative numbers and not all zero",
                hint="write weights:a=0.7,b=0.3",
                problems=[Problem("target", "bad weights")],
            )
        scaled = {a: w / largest for a, w in weights.items()}  # no overflow in the sum
        total = sum(scaled.values())
        return {a: scaled.get(a, 0.0) / total for a in actions}
    raise InvalidInput(
        f"unknown target policy {spec!r}",
        hint="use uniform, arm:<key> or weights:a=0.7,b=0.3",
        problems=[Problem("target", "unknown spec")],
    )


def evaluate_log(
    log: pd.DataFrame, target: str | Mapping[str, float], *, seed: int = 0
) -> dict[str, Estimate]:
    """IPW, SNIPW and DR estimates of ``target`` from a decision log."""
    missing = [c for c in REQUIRED if c not in log.columns]
    if missing:
        raise InvalidInput(
            "the decision log lacks required columns",
            hint="export decisions with action, propensity and reward columns",
            problems=[Problem(c, "missing column") for c in missing],
        )
    actions = sorted(log["action"].astype(str).unique())
    dist = parse_target(target, actions) if isinstance(target, str) else dict(target)
    action = log["action"].astype(str).to_numpy()
    reward = pd.to_numeric(log["reward"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    propensity = pd.to_numeric(log["propensity"], errors="coerce").to_numpy(dtype=float)
    pi = np.array([dist.get(a, 0.0) for a in action])
    half = np.random.default_rng(seed).permutation(action.size) % 2
    q_logged = np.zeros(action.size)
    q_value = np.zeros(action.size)
    for fold in (0, 1):
        train, test = half != fold, half == fold
        overall = reward[train].mean() if train.any() else 0.0
        means = {
            a: float(reward[train & (action == a)].mean())
            if (train & (action == a)).any()
            else overall
            for a in actions
        }
        q_logged[test] = [means[a] for a in action[test]]
        q_value[test] = sum(dist.get(a, 0.0) * means[a] for a in actions)
    return {
        "ipw": ipw(reward, propensity, pi),
        "snipw": snipw(reward, propensity, pi),
        "dr": doubly_robust(reward, propensity, pi, q_logged, q_value),
    }
