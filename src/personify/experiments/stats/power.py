"""How many users a test needs, or what it can detect: the sample-size calculator.

For a two-arm test at level ``alpha`` (two-sided) and power ``1 - beta``, the normal
approximation gives, per arm,

    n = (z_{1-alpha/2} + z_{1-beta})^2 * (var_a + var_b) / delta^2

where ``delta`` is the absolute effect to detect. For a conversion rate ``p`` and a relative
lift ``l``, ``delta = p l`` and the variances are ``p(1-p)`` and ``p(1+l)(1-p(1+l))``.

>>> users_per_arm_for_proportion(0.10, 0.05)
57760
>>> round(minimum_detectable_effect(0.10, 57760), 4)
0.05
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from scipy import optimize
from scipy import stats as sps

from personify.errors import InvalidInput, Problem


def _check(alpha: float, power: float) -> float:
    problems = []
    if not 0 < alpha < 1:
        problems.append(Problem("alpha", "must be in (0, 1)"))
    if not 0 < power < 1:
        problems.append(Problem("power", "must be in (0, 1)"))
    if problems:
        raise InvalidInput(
            "alpha and power must be probabilities",
            hint="typical values: alpha 0.05, power 0.8",
            problems=problems,
        )
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def users_per_arm(
    delta: float, variance_a: float, variance_b: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per arm to detect an absolute difference ``delta`` between two means."""
    z = _check(alpha, power)
    if delta == 0 or variance_a < 0 or variance_b < 0:
        raise InvalidInput(
            "the effect must be non-zero and the variances non-negative",
            hint="state the smallest effect worth detecting",
            problems=[Problem("delta", "must be non-zero")],
        )
    return math.ceil(z * z * (variance_a + variance_b) / (delta * delta))


def _rates(baseline: float, lift: float) -> tuple[float, float]:
    if not 0 < baseline < 1:
        raise InvalidInput(
            f"the baseline rate must be between 0 and 1, not {baseline}",
            hint="baseline as a fraction (0.05 for 5%), lift as relative (0.1 for +10%)",
            problems=[Problem("baseline", "must be in (0, 1)")],
        )
    treated = baseline * (1 + lift) if math.isfinite(lift) else math.nan
    if not 0 < treated < 1:
        raise InvalidInput(
            f"the lifted rate baseline * (1 + lift) must be between 0 and 1; with baseline "
            f"{baseline:g} the lift must be between -1 and {1 / baseline - 1:g}, not {lift}",
            hint="lift as relative (0.1 for +10%), baseline as a fraction (0.05 for 5%)",
            problems=[Problem("lift", f"must be in (-1, {1 / baseline - 1:g})")],
        )
    return baseline, treated


def users_per_arm_for_proportion(
    baseline: float, relative_lift: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per arm to detect a relative lift on a conversion rate."""
    pa, pb = _rates(baseline, relative_lift)
    return users_per_arm(pb - pa, pa * (1 - pa), pb * (1 - pb), alpha=alpha, power=power)


def power_of(baseline: float, relative_lift: float, users: int, *, alpha: float = 0.05) -> float:
    """The power of a two-sided test with ``users`` per arm against a relative lift."""
    pa, pb = _rates(baseline, relative_lift)
    if users < 2:
        raise InvalidInput(
            "users per arm must be at least 2",
            hint="pass the planned users per arm",
            problems=[Problem("users", "must be >= 2")],
        )
    se = math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / users)
    z = float(sps.norm.ppf(1 - alpha / 2))
    shift = abs(pb - pa) / se
    return float(sps.norm.sf(z - shift) + sps.norm.cdf(-z - shift))


def minimum_detectable_effect(
    baseline: float, users: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest relative lift detectable with ``power`` given ``users`` per arm."""
    _check(alpha, power)
    upper = 1 / baseline - 1 - 1e-9
    if power_of(baseline, 1e-9, users, alpha=alpha) >= power:
        raise InvalidInput(
            f"with {users:,} users per arm even a lift of 1e-9 reaches power {power}: "
            "the minimum detectable lift is too small to compute",
            hint="pass the users you realistically plan per arm",
            problems=[Problem("users", "too many to compute a minimum detectable lift")],
        )
    if power_of(baseline, upper, users, alpha=alpha) < power:
        raise InvalidInput(
            f"{users} users per arm cannot reach power {power} at this baseline",
            hint="plan more users per arm",
            problems=[Problem("users", "too few")],
        )
    return float(
        optimize.brentq(
            lambda lift: power_of(baseline, lift, users, alpha=alpha) - power, 1e-9, upper
        )
    )


def finite_answer(compute: Callable[[], Mapping[str, Any]], hint: str) -> dict[str, Any]:
    """``compute()`` (a power calculator's answer), as a clear error instead of an
    overflow, a domain error or an infinite figure (the API and the CLI share this)."""
    try:
        out = dict(compute())
    except InvalidInput:
        raise
    except (OverflowError, ValueError, ZeroDivisionError) as exc:
        raise InvalidInput(f"these inputs have no finite answer ({exc})", hint=hint) from None
    for name, value in out.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(
                f"{name} is not finite for these inputs",
                hint="use a larger lift or more users, or a usual alpha and power",
                problems=[Problem(name, "no finite answer")],
            )
    return out
