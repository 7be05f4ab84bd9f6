"""Experiment statistics and assignment over HTTP (admin key required).

* ``POST /v1/experiments/assign``: which variation a visitor gets for a GrowthBook-style
  experiment object (server-side SDKs, QA);
* ``POST /v1/experiments/analyze``: results from per-arm sufficient statistics (frequentist,
  sequential and Bayesian, with SRM);
* ``POST /v1/experiments/power``: sample size, power and minimum detectable lift;
* ``POST /v1/experiments/ope``: IPW, SNIPW and DR of a target policy on logged decisions.
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from personify.api.decide import decider
from personify.api.deps import Engine, Marketer
from personify.errors import InvalidInput, Problem, Unavailable
from personify.experiments.assignment import AssignmentContext, ExperimentSpec, run
from personify.experiments.learning import OUTCOME_LIMIT
from personify.experiments.metrics import check_cuped_days, check_guardrails, parse_metric
from personify.experiments.ope.logged import evaluate_log
from personify.experiments.report import chart, finite
from personify.experiments.serving import ExperimentService, attach, set_status
from personify.experiments.sources import (
    analyze_experiment,
    events_frame,
    events_from_outcomes,
    metric_events,
)
from personify.experiments.stats import (
    NormalPrior,
    Proportion,
    SampleMean,
    Statistic,
    bayesian_test,
    sequential_test,
    srm_check,
    welch_ttest,
)
from personify.experiments.stats import power as pw
from personify.experiments.stats.power import finite_answer

router = APIRouter(prefix="/v1/experiments", tags=["experiments"], dependencies=[Marketer])
_attach_lock = threading.Lock()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignRequest(_Body):
    experiment: dict[str, Any] = Field(description="A GrowthBook experiment object.")
    attributes: dict[str, Any] = Field(default_factory=dict)
    forced_variations: dict[str, int] = Field(default_factory=dict)
    url: str = ""


class Arm(_Body):
    name: str
    type: Literal["mean", "proportion"]
    sum: float = Field(allow_inf_nan=False)
    sum_squares: float | None = Field(None, ge=0, allow_inf_nan=False)
    n: int = Field(ge=2)


class Prior(_Body):
    mean: float = Field(0.0, allow_inf_nan=False)
    variance: float = Field(gt=0, allow_inf_nan=False)


class AnalyzeRequest(_Body):
    arms: list[Arm] = Field(min_length=2, description="Control first.")
    weights: list[float] | None = None
    alpha: float = Field(0.05, gt=0, lt=1)
    method: Literal["frequentist", "sequential"] = "frequentist"
    prior: Prior | None = None


class PowerRequest(_Body):
    baseline: float = Field(gt=0, lt=1)
    lift: float | None = Field(None, allow_inf_nan=False)
    users: int | None = Field(None, ge=2)
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)


class LoggedDecision(_Body):
    action: str
    propensity: float = Field(gt=0, le=1)
    reward: float = Field(0.0, allow_inf_nan=False)


class OpeRequest(_Body):
    log: list[LoggedDecision] = Field(min_length=2)
    target: str = Field(description="uniform, arm:<key> or weights:a=0.7,b=0.3")


@router.post("/assign")
def assign(body: AssignRequest) -> dict[str, Any]:
    """GrowthBook ``run`` semantics for one visitor."""
    spec = ExperimentSpec.from_growthbook(body.experiment)
    result = run(
        spec,
        AssignmentContext(
            attributes=body.attributes, forced_variations=body.forced_variations, url=body.url
        ),
    )
    return {
        "key": result.key,
        "in_experiment": result.in_experiment,
        "variation_id": result.variation_id,
        "value": result.value,
        "hash_used": result.hash_used,
        "hash_attribute": result.hash_attribute,
        "hash_value": result.hash_value,
        "bucket": result.bucket,
    }


def _statistic(arm: Arm) -> Statistic:
    if arm.type == "proportion":
        return Proportion(arm.sum, arm.n)
    if arm.sum_squares is None:
        raise InvalidInput(
            f"arm {arm.name!r}: a mean metric needs sum_squares",
            hint="send the sum of squared per-unit values",
            problems=[Problem(f"arms.{arm.name}.sum_squares", "missing")],
        )
    # sum_squares >= sum^2 / n (Cauchy-Schwarz), up to float rounding
    floor = arm.sum * (arm.sum / arm.n)
    if not math.isfinite(floor):
        raise InvalidInput(
            f"arm {arm.name!r}: sum ({arm.sum:g}) is too large to analyse",
            hint="send sums in a smaller unit (e.g. dollars rather than cents)",
            problems=[Problem(f"arms.{arm.name}.sum", "too large")],
        )
    if arm.sum_squares < floor * (1 - 1e-9) - 1e-9:
        raise InvalidInput(
            f"arm {arm.name!r}: sum_squares ({arm.sum_squares:g}) cannot be below "
            f"sum^2 / n ({floor:g}); these are not the sums of {arm.n} real values",
            hint="send sum = Σx and sum_squares = Σx² over the arm's units",
            problems=[Problem(f"arms.{arm.name}.sum_squares", "must be >= sum^2 / n")],
        )
    return SampleMean(arm.sum, arm.sum_squares, arm.n)


@router.post("/analyze")
def analyze(body: AnalyzeRequest) -> dict[str, Any]:
    """Each treatment arm against the first (control): lifts, intervals, chance to win, SRM."""
    stats = [_statistic(arm) for arm in body.arms]
    test = sequential_test if body.method == "sequential" else welch_ttest
    control = stats[0]
    prior = NormalPrior(body.prior.mean, body.prior.variance) if body.prior else None
    results = []
    try:
        for arm, stat in zip(body.arms[1:], stats[1:], strict=True):
            results.append(
                {
                    "variant": arm.name,
                    "absolute": test(control, stat, kind="absolute", alpha=body.alpha).as_dict(),
                    "relative": test(control, stat, kind="relative", alpha=body.alpha).as_dict(),
                    "bayesian": bayesian_test(
                        control, stat, prior=prior, alpha=body.alpha
                    ).as_dict(),
                }
            )
    except (OverflowError, ZeroDivisionError) as exc:
        raise InvalidInput(
            f"these arm statistics are too large to analyse ({exc})",
            hint="send sums in a smaller unit (e.g. dollars rather than cents)",
            problems=[Problem("arms", "values overflow")],
        ) from None
    srm = srm_check([arm.n for arm in body.arms], body.weights)
    out = {"control": body.arms[0].name, "results": results, "srm": srm.as_dict()}
    return dict(finite({**out, "method": body.method}))


@router.post("/power")
def power(body: PowerRequest) -> dict[str, Any]:
    """Users per arm for ``lift``; with ``users``, the power and the minimum detectable lift."""
    if body.lift is None and body.users is None:
        raise InvalidInput(
            "give lift (for a sample size) or users (for power and MDE)",
            hint='e.g. {"baseline": 0.05, "lift": 0.1}',
            problems=[Problem("lift", "missing")],
        )
    out = finite_answer(
        lambda: _power(body),
        "use a usual alpha (e.g. 0.05), power (e.g. 0.8) and a lift the baseline allows",
    )
    return out


def _power(body: PowerRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"baseline": body.baseline, "alpha": body.alpha, "power": body.power}
    if body.lift is not None:
        out["users_per_arm"] = pw.users_per_arm_for_proportion(
            body.baseline, body.lift, alpha=body.alpha, power=body.power
        )
    if body.users is not None:
        out["minimum_detectable_lift"] = pw.minimum_detectable_effect(
            body.baseline, body.users, alpha=body.alpha, power=body.power
        )
        if body.lift is not None:
            out["power_at_users"] = pw.power_of(
                body.baseline, body.lift, body.users, alpha=body.alpha
            )
    return out


@router.post("/ope")
def ope(body: OpeRequest) -> dict[str, Any]:
    """Off-policy estimates of ``target`` from logged decisions with propensities."""
    frame = pd.DataFrame([d.model_dump() for d in body.log])
    estimates = evaluate_log(frame, body.target)
    return dict(finite({name: e.as_dict() for name, e in estimates.items()}))


def served(request: Request) -> ExperimentService:
    """The app's experiment service, attached to the app's decider on first use."""
    state = request.app.state
    found = getattr(state, "experiments", None)
    if found is None:
        with _attach_lock:
            found = getattr(state, "experiments", None)
            if found is None:
                engine_decider = decider(request)
                # a decider that already serves experiments (wired at creation) is reused
                found = getattr(engine_decider, "experiments", None) or attach(engine_decider)
                state.experiments = found
    assert isinstance(found, ExperimentService)
    return found


@router.get("")
def list_experiments(service: Annotated[ExperimentService, Depends(served)]) -> dict[str, Any]:
    """Experiments being served, with their status and any definition that failed to load."""
    items = []
    for key in service.served_keys():
        exp = service.experiment(key)
        items.append(
            {
                "key": key,
                "placement": exp.placement,
                "type": exp.type,
                "status": exp.status,
                "variants": [{"key": v.key, "weight": v.weight} for v in exp.variants],
            }
        )
    return {"experiments": items, "errors": dict(service.errors)}


@router.get("/{key}/report", response_model=None)
def report(
    key: str,
    request: Request,
    p: Engine,
    service: Annotated[ExperimentService, Depends(served)],
    metric: Annotated[list[str], Query()] = ["conversion:Order Completed"],  # noqa: B006
    guardrail: Annotated[list[str], Query()] = [],  # noqa: B006
    method: Literal["frequentist", "sequential"] = "frequentist",
    correction: Literal["holm", "bh", "none"] = "holm",
    cuped_days: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    format: Literal["json", "png"] = "json",
) -> dict[str, Any] | Response:
    """Results per metric and variant with intervals, SRM status and a verdict (or a PNG)."""
    metrics = [parse_metric(spec, guardrail) for spec in metric]
    check_guardrails(metrics, guardrail)
    cuped_days = check_cuped_days(cuped_days)
    source = "events"
    try:
        events = events_frame(p.stores.events.scan(events=metric_events(metrics)))
    except Unavailable:  # under `serve` the event history is scanned only by the worker
        source = "decision log (attributed rewards)"
        outcomes = decider(request).log.outcomes(key, limit=OUTCOME_LIMIT)
        events = events_from_outcomes(outcomes, service.exposures.frame(key))
    analysis = analyze_experiment(
        service, key, events, metrics, method=method, correction=correction, cuped_days=cuped_days
    )
    if format == "png":
        with tempfile.TemporaryDirectory() as folder:
            path = chart(analysis, Path(folder) / "chart.png")
            return Response(path.read_bytes(), media_type="image/png")
    return dict(finite({**analysis.as_dict(), "source": source}))


class ShipRequest(_Body):
    variant: str | None = None


@router.post("/{key}/{action}")
def change_status(
    key: str,
    action: Literal["start", "stop", "ship"],
    service: Annotated[ExperimentService, Depends(served)],
    body: ShipRequest | None = None,
) -> dict[str, Any]:
    """Start, stop or ship (``{"variant": ...}``) an experiment; live within a second."""
    changed = set_status(service.store, key, action, "api", variant=body.variant if body else None)
    service.refresh(force=True)
    return changed
