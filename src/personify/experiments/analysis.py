"""Analyse an experiment: per metric and variant, lift with intervals, SRM, and a verdict.

:func:`analyze` turns exposures and events into an :class:`ExperimentAnalysis`:

1. **SRM first**: exposed units per variant against the configured weights (chi-square,
   alarm under p < 0.001). A mismatch is stated before any result, because it makes them
   untrustworthy.
2. Per metric and treatment variant: the control and treatment statistics (proportion, mean,
   or ratio with the delta method; optionally CUPED-adjusted), the absolute and relative
   lift with a 95% interval from Welch's t-test (or an always-valid interval with
   ``method="sequential"``), the Bayesian chance to beat control and expected loss.
3. p-values are corrected across every (metric, variant) comparison (Holm by default, or
   Benjamini-Hochberg); significance uses the corrected value.
4. A plain-language verdict: "B beats A on conversion by 4.1% (95% CI 1.2% to 7.0%);
   not yet significant on revenue_per_user".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from personify.errors import InvalidInput, Problem
from personify.experiments.metrics import Metric, UnitValues, unit_values
from personify.experiments.stats import (
    BayesianResult,
    Proportion,
    RatioStatistic,
    SampleMean,
    SrmResult,
    Statistic,
    TestResult,
    bayesian_test,
    benjamini_hochberg,
    cuped,
    holm,
    sequential_test,
    srm_check,
    welch_ttest,
)

Method = Literal["frequentist", "sequential"]
Correction = Literal["holm", "bh", "none"]


@dataclass(frozen=True)
class MetricResult:
    """One metric, one treatment variant against control."""

    metric: str
    variant: str
    control: str
    units: tuple[int, int]
    means: tuple[float, float]
    absolute: TestResult
    relative: TestResult
    bayesian: BayesianResult
    p_adjusted: float
    alpha: float
    guardrail: bool
    higher_is_better: bool
    cuped_reduction: float | None = None

    @property
    def significant(self) -> bool:
        return self.p_adjusted < self.alpha

    @property
    def direction(self) -> int:
        """+1 if the variant is significantly better, -1 if worse, 0 if not significant."""
        if not self.significant:
            return 0
        up = self.relative.estimate > 0
        return 1 if up == self.higher_is_better else -1

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "variant": self.variant,
            "control": self.control,
            "units": list(self.units),
            "means": list(self.means),
            "absolute": self.absolute.as_dict(),
            "relative": self.relative.as_dict(),
            "bayesian": self.bayesian.as_dict(),
            "p_adjusted": self.p_adjusted,
            "significant": self.significant,
            "guardrail": self.guardrail,
            "cuped_variance_reduction": self.cuped_reduction,
        }


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Everything a report shows about one experiment."""

    experiment: str
    control: str
    variants: tuple[str, ...]
    units: Mapping[str, int]
    srm: SrmResult
    results: tuple[MetricResult, ...]
    method: str
    correction: str
    verdict: str
    pending: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "control": self.control,
            "variants": list(self.variants),
            "units": dict(self.units),
            "srm": self.srm.as_dict(),
            "method": self.method,
            "correction": self.correction,
            "results": [r.as_dict() for r in self.results],
            "verdict": self.verdict,
            "not_enough_data": list(self.pending),
        }


def _statistic(values: UnitValues, mask: np.ndarray) -> Statistic:
    y = values.values[mask]
    if values.metric.kind == "ratio":
        assert values.denominators is not None
        return RatioStatistic.of(y, values.denominators[mask])
    if values.metric.kind == "proportion":
        return Proportion(float(y.sum()), int(y.size))
    return SampleMean.of(y)


def _compare(
    values: UnitValues, control: str, variant: str, *, alpha: float, method: Method, use_cuped: bool
) -> tuple[TestResult, TestResult, BayesianResult, float | None, tuple[Statistic, Statistic]]:
    a_mask, b_mask = values.variants == control, values.variants == variant
    reduction = None
    a: Statistic
    b: Statistic
    if use_cuped and values.covariates is not None:
        adjusted = cuped(
            [values.values[a_mask], values.values[b_mask]],
            [values.covariates[a_mask], values.covariates[b_mask]],
        )
        a, b = adjusted.arms
        reduction = adjusted.variance_reduction
    else:
        a, b = _statistic(values, a_mask), _statistic(values, b_mask)
    test = sequential_test if method == "sequential" else welch_ttest
    absolute = test(a, b, kind="absolute", alpha=alpha)
    relative = test(a, b, kind="relative", alpha=alpha)
    return absolute, relative, bayesian_test(a, b, alpha=alpha), reduction, (a, b)


def _percent(x: float) -> str:
    return f"{x * 100:.1f}%"


def verdict_of(results: Sequence[MetricResult], srm: SrmResult) -> str:
    """One sentence per finding, the SRM alarm first."""
    parts: list[str] = []
    if srm.mismatch:
        parts.append(
            f"Sample ratio mismatch (p = {srm.p_value:.2g}): the traffic split is not what was "
            "configured, so these results cannot be trusted until the cause is found"
        )
    for r in results:
        low, high = r.relative.ci
        interval = f"(95% CI {_percent(low)} to {_percent(high)})"
        if r.significant:
            verb = "beats" if r.direction > 0 else "loses to"
            if r.guardrail and r.direction < 0:
                parts.append(
                    f"guardrail {r.metric} is hurt: {r.variant} {verb} {r.control} by "
                    f"{_percent(abs(r.relative.estimate))} {interval}"
                )
            else:
                parts.append(
                    f"{r.variant} {verb} {r.control} on {r.metric} by "
                    f"{_percent(abs(r.relative.estimate))} {interval}"
                )
        elif not r.guardrail:
            parts.append(
                f"{r.variant} vs {r.control}: not yet significant on {r.metric} "
                f"(lift {_percent(r.relative.estimate)} {interval})"
            )
    if not parts:
        return "No significant differences yet; no guardrail is hurt."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _check(
    variants: Sequence[str], weights: Sequence[float] | None, units: Mapping[str, int]
) -> None:
    problems = []
    if len(variants) < 2:
        problems.append(Problem("variants", "need a control and at least one treatment"))
    if weights is not None and len(weights) != len(variants):
        problems.append(Problem("weights", "one weight per variant"))
    few = [v for v in variants if units.get(v, 0) < 2]
    problems.extend(Problem(f"variants.{v}", "fewer than 2 exposed units") for v in few)
    if problems:
        raise InvalidInput(
            "cannot analyse this experiment yet",
            hint="every variant needs at least two exposed units; check the variant keys",
            problems=problems,
        )


def analyze(
    exposures: pd.DataFrame,
    events: pd.DataFrame,
    metrics: Sequence[Metric],
    *,
    experiment: str = "experiment",
    variants: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    alpha: float = 0.05,
    method: Method = "frequentist",
    correction: Correction = "holm",
    cuped_days: float | None = None,
) -> ExperimentAnalysis:
    """Analyse one experiment (see the module docstring); the first variant is the control."""
    if not metrics:
        raise InvalidInput(
            "give at least one metric",
            hint="e.g. conversion('purchase', 'Order Completed')",
            problems=[Problem("metrics", "empty")],
        )
    names = (
        list(variants)
        if variants is not None
        else sorted(exposures["variant"].astype(str).unique())
    )
    counts = exposures["variant"].astype(str).value_counts()
    units = {v: int(counts.get(v, 0)) for v in names}
    _check(names, weights, units)
    srm = srm_check([units[v] for v in names], weights)
    control = names[0]
    raw = []
    pending: list[str] = []
    for metric in metrics:
        values = unit_values(exposures, events, metric, cuped_days=cuped_days)
        for variant in names[1:]:
            try:
                absolute, relative, bayes, reduction, (a, b) = _compare(
                    values,
                    control,
                    variant,
                    alpha=alpha,
                    method=method,
                    use_cuped=cuped_days is not None,
                )
            except InvalidInput as exc:  # e.g. no conversions in the control yet
                pending.append(f"{metric.name} ({variant} vs {control}): {exc.message}")
                continue
            raw.append((metric, variant, absolute, relative, bayes, reduction, (a.mean, b.mean)))
    p_values = [item[3].p_value for item in raw]
    adjusted = (
        holm(p_values)
        if correction == "holm"
        else benjamini_hochberg(p_values)
        if correction == "bh"
        else p_values
    )
    results = tuple(
        MetricResult(
            metric=metric.name,
            variant=variant,
            control=control,
            units=(units[control], units[variant]),
            means=means,
            absolute=absolute,
            relative=relative,
            bayesian=bayes,
            p_adjusted=p,
            alpha=alpha,
            guardrail=metric.guardrail,
            higher_is_better=metric.higher_is_better,
            cuped_reduction=reduction,
        )
        for (metric, variant, absolute, relative, bayes, reduction, means), p in zip(
            raw, adjusted, strict=True
        )
    )
    verdict = verdict_of(results, srm)
    if pending:
        verdict += " Not enough data yet for " + "; ".join(pending) + "."
    return ExperimentAnalysis(
        experiment,
        control,
        tuple(names),
        units,
        srm,
        results,
        method,
        correction,
        verdict,
        tuple(pending),
    )
