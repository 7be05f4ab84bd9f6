"""Differentially private counts for aggregates shared with third parties.

A count changes by at most 1 when one person is added or removed (sensitivity 1), so
adding Laplace noise of scale ``1 / epsilon`` makes the released count epsilon-differentially
private; smaller epsilon means more noise and more privacy. Released values are rounded and
clipped at 0 (post-processing keeps the guarantee). Each release spends epsilon: releasing
the same segment k times spends k * epsilon.

>>> import numpy as np
>>> noisy_counts({"vip": 120}, epsilon=1.0, rng=np.random.default_rng(7))["vip"] >= 0
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from personify.errors import InvalidInput, Problem


def noisy_counts(
    counts: Mapping[str, int], epsilon: float, rng: np.random.Generator | None = None
) -> dict[str, int]:
    """Each count plus Laplace(0, 1/epsilon) noise, rounded and clipped at zero."""
    if not epsilon > 0:
        raise InvalidInput(
            "epsilon must be positive",
            hint="privacy.dp_epsilon: 1.0 is a common choice; smaller adds more noise",
            problems=[Problem("epsilon", "a number > 0")],
        )
    rng = rng or np.random.default_rng()
    noise = rng.laplace(0.0, 1.0 / epsilon, size=len(counts))
    return {
        key: max(0, round(value + n)) for (key, value), n in zip(counts.items(), noise, strict=True)
    }
