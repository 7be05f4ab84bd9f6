"""Customer lifetime value: the BG/NBD purchase model and the Gamma-Gamma spend model.

Both are fitted by maximum likelihood with scipy (Fader, Hardie & Lee 2005, "Counting your
customers the easy way"; Fader & Hardie 2013, "The Gamma-Gamma model of monetary value").
Each customer is summarised by ``x`` (repeat purchases: purchase days after the first),
``t_x`` (time of the last purchase, measured from the first) and ``T`` (time from the first
purchase to the end of the calibration period), in weeks, plus ``monetary`` (mean value of
the repeat purchases). :func:`rfm_summary` computes them from any event source.

BG/NBD: while alive a customer buys at a Poisson rate (Gamma(r, alpha) across customers) and
after each purchase drops out with probability p (Beta(a, b) across customers). Gamma-Gamma:
a customer's transaction values vary around their own mean, which varies across customers
(shape p, q, scale gamma); it is independent of how often they buy.

>>> bg = BetaGeoFitter().fit([0, 2, 5], [0.0, 20.0, 30.0], [30.0, 35.0, 38.0])
>>> bool(0 < bg.p_alive([2], [20.0], [35.0])[0] <= 1)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

from personify.errors import InvalidInput, Problem
from personify.models.features import ORDER_AMOUNT_SQL, check_source, cutoff_text

Array = np.ndarray[Any, Any]


def _arrays(*columns: Any) -> list[Array]:
    out = [np.asarray(c, dtype=float) for c in columns]
    if len({len(c) for c in out}) != 1 or len(out[0]) == 0:
        raise InvalidInput(
            "x, t_x and T must be non-empty and of equal length",
            hint="pass one value per customer in each (see rfm_summary)",
        )
    return out


def _check_summary(x: Array, t_x: Array, T: Array) -> None:
    problems = []
    if (x < 0).any() or (np.mod(x, 1) != 0).any():
        problems.append(Problem("x", "repeat purchases must be whole numbers >= 0"))
    if (t_x < 0).any() or (t_x > T + 1e-9).any():
        problems.append(Problem("t_x", "the last purchase must fall between 0 and T"))
    if ((x == 0) & (t_x != 0)).any():
        problems.append(Problem("t_x", "customers without repeat purchases must have t_x = 0"))
    if problems:
        raise InvalidInput(
            "the purchase summary is inconsistent",
            hint="build it with personify.models.clv.rfm_summary",
            problems=problems,
        )


# Parameters are searched on a log scale within exp(+-10): wide enough for any real data set,
# and it stops a degenerate fit (no heterogeneity to estimate) from running off to infinity.
_LOG_BOUND = 10.0


def _maximize(objective: Any, n: int) -> Any:
    """Nelder-Mead from all-ones (robust start), then L-BFGS-B to polish; both bounded."""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * n
    first = minimize(
        objective,
        np.zeros(n),
        method="Nelder-Mead",
        bounds=bounds,
        options={"maxiter": 4_000, "xatol": 1e-8, "fatol": 1e-8},
    )
    return minimize(objective, first.x, method="L-BFGS-B", bounds=bounds)


def _at_bound(log_params: Array) -> bool:
    return bool(np.any(np.abs(log_params) > _LOG_BOUND - 1e-3))


def bgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    """Per-customer log-likelihood of the BG/NBD model at ``(r, alpha, a, b)``."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=float)


class BetaGeoFitter:
    """BG/NBD fitted by maximum likelihood; predicts purchases and the chance of being alive."""

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    def fit(self, x: Any, t_x: Any, T: Any) -> BetaGeoFitter:
        xs, txs, Ts = _arrays(x, t_x, T)
        _check_summary(xs, txs, Ts)
        # Identical (x, t_x, T) rows contribute identically: weight the unique ones.
        rows, counts = np.unique(np.column_stack([xs, txs, Ts]), axis=0, return_counts=True)

        def objective(log_params: Array) -> float:
            params = np.exp(log_params)
            ll = bgnbd_log_likelihood(params, rows[:, 0], rows[:, 1], rows[:, 2])
            return float(-(ll * counts).sum() + self.penalizer * np.sum(params**2))

        result = _maximize(objective, 4)
        self.r_, self.alpha_, self.a_, self.b_ = (float(v) for v in np.exp(result.x))
        self.log_likelihood_ = float(-result.fun)
        self.converged_ = bool(result.success) and not _at_bound(result.x)
        self.n_customers_ = len(xs)
        return self

    @property
    def params_(self) -> dict[str, float]:
        return {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}

    def _odds_dead(self, x: Array, t_x: Array, T: Array) -> Array:
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (a / np.maximum(b + x - 1, 1e-300)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return np.where(x > 0, ratio, 0.0)

    def p_alive(self, x: Any, t_x: Any, T: Any) -> Array:
        """Probability each customer is still active at the end of their calibration."""
        xs, txs, Ts = _arrays(x, t_x, T)
        return np.asarray(1.0 / (1.0 + self._odds_dead(xs, txs, Ts)), dtype=float)

    def expected_purchases(self, t: float, x: Any, t_x: Any, T: Any) -> Array:
        """Expected purchases of each customer in the next ``t`` weeks, given their history."""
        xs, txs, Ts = _arrays(x, t_x, T)
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        z = t / (alpha + Ts + t)
        hyp = hyp2f1(r + xs, b + xs, a + b + xs - 1, z)
        head = (a + b + xs - 1) / (a - 1)
        body = 1 - ((alpha + Ts) / (alpha + Ts + t)) ** (r + xs) * hyp
        return np.asarray(head * body / (1 + self._odds_dead(xs, txs, Ts)), dtype=float)

    def expected_purchases_new(self, t: float) -> float:
        """Expected purchases in ``t`` weeks of a customer just acquired (E[X(t)])."""
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        z = t / (alpha + t)
        return float(
            (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))
        )


def gamma_gamma_log_likelihood(params: Array, x: Array, m: Array) -> Array:
    """Per-customer log-likelihood of the Gamma-Gamma model at ``(p, q, gamma)``."""
    p, q, g = params
    return np.asarray(
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + m * x),
        dtype=float,
    )


class GammaGammaFitter:
    """Gamma-Gamma spend model on customers with repeat purchases (``x > 0``)."""

    def fit(self, x: Any, monetary: Any) -> GammaGammaFitter:
        xs, ms = _arrays(x, monetary)
        keep = xs > 0
        if keep.sum() < 3 or (ms[keep] <= 0).any():
            raise InvalidInput(
                "Gamma-Gamma needs repeat customers with positive mean spend",
                hint="pass only customers with x > 0 and monetary > 0 (at least 3)",
                problems=[Problem("monetary", "must be > 0 for every customer with x > 0")],
            )
        xs, ms = xs[keep], ms[keep]

        def objective(log_params: Array) -> float:
            return float(-gamma_gamma_log_likelihood(np.exp(log_params), xs, ms).sum())

        result = _maximize(objective, 3)
        self.p_, self.q_, self.gamma_ = (float(v) for v in np.exp(result.x))
        self.log_likelihood_ = float(-result.fun)
        self.converged_ = bool(result.success) and not _at_bound(result.x)
        return self

    @property
    def params_(self) -> dict[str, float]:
        return {"p": self.p_, "q": self.q_, "gamma": self.gamma_}

    def expected_spend(self, x: Any, monetary: Any) -> Array:
        """Expected value of a customer's future transactions (population mean if x = 0)."""
        xs, ms = _arrays(x, monetary)
        p, q, g = self.p_, self.q_, self.gamma_
        ms = np.where(xs > 0, ms, 0.0)
        return np.asarray(p * (g + xs * ms) / (p * xs + q - 1), dtype=float)


def customer_value(
    bg: BetaGeoFitter,
    gg: GammaGammaFitter,
    summary: pd.DataFrame,
    *,
    weeks: float,
    discount_per_week: float = 0.0,
) -> pd.DataFrame:
    """Expected purchases, spend per purchase, value over ``weeks`` and P(alive) per customer.

    With a discount rate, value is summed week by week at ``1 / (1 + d) ** k``.
    """
    x, t_x, T, m = (summary[c].to_numpy(float) for c in ("x", "t_x", "T", "monetary"))
    spend = gg.expected_spend(x, m)
    steps = np.arange(1, int(np.ceil(weeks)) + 1, dtype=float)
    steps[-1] = weeks
    cumulative = np.column_stack([bg.expected_purchases(float(s), x, t_x, T) for s in steps])
    per_step = np.diff(np.column_stack([np.zeros(len(x)), cumulative]), axis=1)
    factors = 1.0 / (1.0 + discount_per_week) ** steps
    return pd.DataFrame(
        {
            "expected_purchases": cumulative[:, -1],
            "expected_spend": spend,
            "clv": (per_step * factors).sum(axis=1) * spend,
            "p_alive": bg.p_alive(x, t_x, T),
        },
        index=summary.index,
    )


def rfm_summary(
    con: Any, source: str, *, start: str | None = None, end: str, unit_days: float = 7.0
) -> pd.DataFrame:
    """``x``, ``t_x``, ``T`` (in ``unit_days``) and ``monetary`` per buyer, from order events.

    Purchases on the same calendar day count as one (their values are summed), as in the
    BG/NBD literature. Only orders in ``[start, end]`` (dates, inclusive) count; ``T`` runs
    from the first purchase to ``end``. ``monetary`` is the mean value of repeat purchases
    (0 for customers without any).
    """
    check_source(source)
    params = {"end": cutoff_text(end), "start": cutoff_text(start or "1900-01-01")}
    query = f"""
    WITH o AS (
      SELECT profile_id, CAST("timestamp" AS DATE) AS day,
        {ORDER_AMOUNT_SQL} AS amount
      FROM {source}
      WHERE event = 'Order Completed' AND profile_id IS NOT NULL
        AND CAST("timestamp" AS DATE) >= CAST(CAST($start AS TIMESTAMPTZ) AS DATE)
        AND CAST("timestamp" AS DATE) <= CAST(CAST($end AS TIMESTAMPTZ) AS DATE)
    ),
    d AS (SELECT profile_id, day, SUM(amount) AS amount FROM o GROUP BY profile_id, day),
    r AS (
      SELECT profile_id, day, amount,
        ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY day) AS k,
        MIN(day) OVER (PARTITION BY profile_id) AS first_day
      FROM d
    )
    SELECT profile_id, COUNT(*) - 1 AS x,
      date_diff('day', MIN(first_day), MAX(day)) AS tx_days,
      date_diff('day', MIN(first_day), CAST(CAST($end AS TIMESTAMPTZ) AS DATE)) AS t_days,
      COALESCE(AVG(amount) FILTER (WHERE k > 1), 0) AS monetary
    FROM r GROUP BY profile_id ORDER BY profile_id
    """
    frame = con.execute(query, params).df().set_index("profile_id")
    return pd.DataFrame(
        {
            "x": frame["x"].astype(float),
            "t_x": frame["tx_days"].astype(float) / unit_days,
            "T": frame["t_days"].astype(float) / unit_days,
            "monetary": frame["monetary"].astype(float),
        },
        index=frame.index,
    )
