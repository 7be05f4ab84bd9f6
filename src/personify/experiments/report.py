"""Render an :class:`~.analysis.ExperimentAnalysis`: JSON, a Rich table, and a PNG chart.

The chart is a forest plot: one row per (metric, variant), the relative lift as a dot and its
95% interval as a bar, the zero line marked; green when significantly better, red when
significantly worse, grey otherwise. Rendered with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from personify.experiments.analysis import ExperimentAnalysis, MetricResult


def finite(value: Any) -> Any:
    """The same JSON data with infinite or NaN numbers (one-sided bounds) as ``None``.

    JSON has no infinity; writing ``Infinity`` would break strict parsers.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def to_json(analysis: ExperimentAnalysis) -> str:
    return json.dumps(finite(analysis.as_dict()), indent=2, allow_nan=False)


def _pct(x: float) -> str:
    return "-inf" if x == float("-inf") else "+inf" if x == float("inf") else f"{x * 100:+.2f}%"


def _row_style(result: MetricResult) -> str:
    return {1: "green", -1: "red"}.get(result.direction, "")


def table(analysis: ExperimentAnalysis) -> Table:
    """The results as a Rich table (metric, variant, means, lift and interval, p, chance to win)."""
    out = Table(title=f"experiment {analysis.experiment} (control: {analysis.control})")
    for column in (
        "metric",
        "variant",
        "units",
        "control mean",
        "variant mean",
        "lift",
        "95% CI",
        "p (adj.)",
        "P(beat control)",
    ):
        out.add_column(column, justify="left" if column in ("metric", "variant") else "right")
    for r in analysis.results:
        low, high = r.relative.ci
        out.add_row(
            r.metric + (" (guardrail)" if r.guardrail else ""),
            r.variant,
            f"{r.units[0]:,} / {r.units[1]:,}",
            f"{r.means[0]:.4g}",
            f"{r.means[1]:.4g}",
            _pct(r.relative.estimate),
            f"{_pct(low)} to {_pct(high)}",
            f"{r.p_adjusted:.3g}",
            f"{r.bayesian.chance_to_win:.1%}",
            style=_row_style(r),
        )
    status = "MISMATCH" if analysis.srm.mismatch else "ok"
    out.caption = f"SRM {status} (p = {analysis.srm.p_value:.3g}); {analysis.verdict}"
    return out


def chart(analysis: ExperimentAnalysis, path: Path) -> Path:
    """Write the forest plot of relative lifts to ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = list(analysis.results)
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(results) + 1.6))
    for i, r in enumerate(reversed(results)):
        low, high = r.relative.ci
        colour = {1: "tab:green", -1: "tab:red"}.get(r.direction, "tab:grey")
        ax.plot([low * 100, high * 100], [i, i], color=colour, linewidth=3)
        ax.plot([r.relative.estimate * 100], [i], "o", color="black")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(results)))
    ax.set_yticklabels([f"{r.metric}: {r.variant}" for r in reversed(results)])
    ax.set_xlabel(f"relative lift vs {analysis.control} (%), 95% interval")
    srm = "SRM MISMATCH" if analysis.srm.mismatch else "SRM ok"
    ax.set_title(f"{analysis.experiment} ({srm})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path
