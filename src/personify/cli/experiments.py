"""``personify experiments``: analyse tests, plan them, check SRM, simulate bandits, run OPE.

Every command works on files or numbers, so a data scientist can use it on an export
without a running server:

* ``analyze EXPOSURES EVENTS``: results table with intervals, SRM and a verdict; ``--json``,
  ``--chart out.png``;
* ``power``: users per arm for a baseline and lift (or the power of a planned size);
* ``srm 1000 1200``: sample-ratio-mismatch check;
* ``simulate``: the bandit regret simulation with known arm rates;
* ``ope open-bandit DIR`` / ``ope log FILE --target ...`` / ``ope decisions POLICY --target
  ...``: off-policy evaluation (the last one reads ``decisions.sqlite`` in the data directory);
* ``report KEY``: the report of an experiment served from the data directory (exposures,
  events and its definition).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
from rich.table import Table

from personify.cli.common import console, friendly_errors
from personify.errors import InvalidInput, NotFound, Problem

if TYPE_CHECKING:
    import pandas as pd

    from personify.experiments.ope.estimators import Estimate

app = typer.Typer(
    help="Experiments: analysis, planning, SRM, bandit simulation, off-policy evaluation."
)
ope_app = typer.Typer(help="Off-policy evaluation: estimate a policy from logs of another.")
app.add_typer(ope_app, name="ope")


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV, Parquet or NDJSON (``.ndjson``/``.jsonl``) file as a data frame."""
    import pandas as pd

    if not path.is_file():
        raise NotFound(f"no file at {path}", hint="check the path")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix in (".csv", ".csv.gz"):
        return pd.read_csv(path)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz"):
        return pd.read_json(path, lines=True)
    raise InvalidInput(
        f"cannot read {path.name}: unknown file type",
        hint="use .csv, .parquet, .ndjson or .jsonl",
        problems=[Problem("path", f"unsupported suffix {suffix!r}")],
    )


def _floats(text: str | None, what: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise InvalidInput(
            f"cannot read {what} {text!r}",
            hint=f"write {what} as comma-separated numbers, e.g. 0.5,0.5",
            problems=[Problem(what, "not numbers")],
        ) from None


@app.command("analyze")
@friendly_errors
def analyze_command(
    exposures: Path = typer.Argument(..., help="Exposures file: unit, variant, exposed_at."),
    events: Path = typer.Argument(..., help="Events file: unit, event, timestamp (+ values)."),
    metric: list[str] = typer.Option(
        ["conversion:Order Completed"], "--metric", "-m", help="Metric spec (repeatable)."
    ),
    guardrail: list[str] = typer.Option([], help="Metric name to treat as a guardrail."),
    variants: str = typer.Option("", help="Variant keys, control first (default: sorted)."),
    weights: str = typer.Option("", help="Configured traffic weights, for the SRM check."),
    method: str = typer.Option("frequentist", help="frequentist or sequential."),
    correction: str = typer.Option("holm", help="holm, bh or none."),
    cuped_days: float = typer.Option(0.0, help="Pre-exposure days for CUPED (0: off)."),
    alpha: float = typer.Option(0.05),
    name: str = typer.Option("experiment", help="The experiment's name in the report."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    chart_path: Path | None = typer.Option(None, "--chart", help="Write a PNG chart here."),
) -> None:
    """Analyse an experiment from exposure and event files."""
    from personify.experiments.analysis import analyze
    from personify.experiments.report import chart, table, to_json

    if method not in ("frequentist", "sequential") or correction not in ("holm", "bh", "none"):
        raise InvalidInput(
            "unknown method or correction",
            hint="--method frequentist|sequential, --correction holm|bh|none",
            problems=[Problem("method", method), Problem("correction", correction)],
        )
    from personify.experiments.metrics import check_cuped_days, check_guardrails, parse_metric

    metrics = [parse_metric(spec, set(guardrail)) for spec in metric]
    check_guardrails(metrics, guardrail)
    cuped = check_cuped_days(cuped_days)
    result = analyze(
        read_frame(exposures),
        read_frame(events),
        metrics,
        experiment=name,
        variants=[v for v in variants.split(",") if v] or None,
        weights=_floats(weights, "weights"),
        alpha=alpha,
        method=method,  # type: ignore[arg-type]  # checked above
        correction=correction,  # type: ignore[arg-type]  # checked above
        cuped_days=cuped,
    )
    if as_json:
        console.print_json(to_json(result))
    else:
        console.print(table(result))
    if chart_path is not None:
        chart(result, chart_path)
        if not as_json:
            console.print(f"chart written to {chart_path}")


@app.command("power")
@friendly_errors
def power_command(
    baseline: float = typer.Option(..., help="Baseline conversion rate, e.g. 0.05."),
    lift: float = typer.Option(0.0, help="Relative lift to detect, e.g. 0.1 for +10%."),
    users: int = typer.Option(0, help="Planned users per arm: report power and the MDE."),
    alpha: float = typer.Option(0.05),
    power: float = typer.Option(0.8),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Users per arm to detect a lift, or the power and MDE of a planned size."""
    if not lift and not users:
        raise InvalidInput(
            "give --lift (sample size) or --users (power and MDE)",
            hint="personify experiments power --baseline 0.05 --lift 0.1",
            problems=[Problem("lift", "missing")],
        )
    from personify.experiments.stats.power import finite_answer

    out = finite_answer(
        lambda: _power(baseline, lift, users, alpha, power),
        "use a usual alpha (e.g. 0.05), power (e.g. 0.8), a lift the baseline allows "
        "and a realistic number of users",
    )
    if as_json:
        console.print_json(orjson.dumps(out).decode())
        return
    grid = Table("quantity", "value", title="power calculator")
    for key, value in out.items():
        grid.add_row(key, f"{value:,.4g}" if isinstance(value, float) else f"{value:,}")
    console.print(grid)


def _power(baseline: float, lift: float, users: int, alpha: float, power: float) -> dict[str, Any]:
    from personify.experiments.stats import power as pw

    out: dict[str, Any] = {"baseline": baseline, "alpha": alpha}
    if lift:
        out |= {
            "lift": lift,
            "power": power,
            "users_per_arm": pw.users_per_arm_for_proportion(
                baseline, lift, alpha=alpha, power=power
            ),
        }
    if users:
        out["users"] = users
        out["minimum_detectable_lift"] = pw.minimum_detectable_effect(
            baseline, users, alpha=alpha, power=power
        )
        if lift:
            out["power_at_users"] = pw.power_of(baseline, lift, users, alpha=alpha)
    return out


@app.command("srm")
@friendly_errors
def srm_command(
    users: list[int] = typer.Argument(..., help="Exposed users per variant."),
    weights: str = typer.Option("", help="Configured weights (default: equal)."),
) -> None:
    """Sample-ratio-mismatch check of users per variant against the configured split."""
    from personify.experiments.stats import srm_check

    result = srm_check(users, _floats(weights, "weights"))
    status = "[bold red]MISMATCH[/]" if result.mismatch else "[green]ok[/]"
    console.print(f"SRM {status}: chi-square {result.statistic:.3f}, p = {result.p_value:.4g}")


@app.command("simulate")
@friendly_errors
def simulate_command(
    horizon: int = typer.Option(100_000, help="Decisions per run."),
    replications: int = typer.Option(20, help="Independent runs averaged."),
    rates: str = typer.Option("0.10,0.07,0.05,0.03,0.02", help="True click rate per arm."),
    seed: int = typer.Option(0),
) -> None:
    """Cumulative regret of Thompson sampling, epsilon-greedy, UCB1 and random on known arms."""
    from personify.cli.common import progress
    from personify.experiments.bandits.simulate import POLICIES, simulate_regret

    arm_rates = _floats(rates, "rates") or []
    results = {}
    with progress() as bar:
        task = bar.add_task("simulating", total=len(POLICIES))
        for policy in POLICIES:
            results[policy] = simulate_regret(
                policy, rates=arm_rates, horizon=horizon, replications=replications, seed=seed
            ).mean
            bar.advance(task)
    grid = Table(
        "policy", "mean cumulative regret", title=f"{replications} runs x {horizon:,} decisions"
    )
    for policy, regret in results.items():
        grid.add_row(policy, f"{regret:,.1f}")
    console.print(grid)


def _print_estimates(
    estimates: list[Estimate], title: str, extra: dict[str, Any], as_json: bool
) -> None:
    if as_json:
        console.print_json(
            orjson.dumps({"estimates": [e.as_dict() for e in estimates], **extra}).decode()
        )
        return
    grid = Table("estimator", "value", "95% CI", "rounds", title=title)
    for e in estimates:
        low, high = e.ci
        grid.add_row(e.estimator.upper(), f"{e.value:.6f}", f"{low:.6f} to {high:.6f}", f"{e.n:,}")
    console.print(grid)
    for key, value in extra.items():
        console.print(f"{key}: {value}")


@ope_app.command("open-bandit")
@friendly_errors
def ope_open_bandit(
    folder: Path = typer.Argument(
        ..., help="The open_bandit folder (random/all.csv, bts/all.csv)."
    ),
    simulations: int = typer.Option(100_000, help="Simulated rankings for BTS's distribution."),
    seed: int = typer.Option(12345),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Estimate the logged BTS policy's CTR from the uniform-random log (Open Bandit Dataset)."""
    from personify.experiments.ope.open_bandit import evaluate_bts_on_random

    report = evaluate_bts_on_random(folder, simulations=simulations, seed=seed)
    extra = {"on_policy_ctr": report.on_policy_ctr, "logging_ctr": report.logging_ctr}
    _print_estimates(
        [report.ipw, report.snipw, report.dr], "BTS evaluated on the random log", extra, as_json
    )


@ope_app.command("log")
@friendly_errors
def ope_log(
    path: Path = typer.Argument(..., help="Decision log: action, propensity, reward columns."),
    target: str = typer.Option(..., help="uniform, arm:<key> or weights:a=0.7,b=0.3"),
    action_column: str = typer.Option("action", help="Column holding the action shown."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Estimate a target policy's mean reward from a logged decision file."""
    from personify.experiments.ope.logged import evaluate_log

    frame = read_frame(path)
    if action_column != "action":
        frame = frame.rename(columns={action_column: "action"})
    estimates = evaluate_log(frame, target)
    extra = {"logged_mean_reward": float(frame["reward"].fillna(0).mean()), "target": target}
    _print_estimates(list(estimates.values()), f"target {target}", extra, as_json)


@ope_app.command("decisions")
@friendly_errors
def ope_decisions(
    policy: str = typer.Argument(..., help="The logging policy: an experiment or bandit key."),
    target: str = typer.Option(..., help="uniform, arm:<content> or weights:a=0.7,b=0.3"),
    reward: str = typer.Option("clicked", help="clicked, converted or revenue."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Estimate a target policy from the decisions ``policy`` logged (data directory)."""
    import pandas as pd

    from personify.config import Settings
    from personify.decide.service import open_decision_log
    from personify.experiments.learning import REWARDS, reward_of
    from personify.experiments.ope.logged import evaluate_log

    if reward not in REWARDS:
        raise InvalidInput(
            f"unknown reward {reward!r}",
            hint=f"use one of {', '.join(REWARDS)}",
            problems=[Problem("reward", reward)],
        )
    log = open_decision_log(Settings())
    try:
        rows = [r for r in log.outcomes(policy, limit=10_000_000) if r["content"] is not None]
    finally:
        log.close()
    if not rows:
        raise NotFound(
            f"no logged decisions of policy {policy!r}",
            hint="check the experiment key and PERSONIFY_DATA_DIR",
        )
    frame = pd.DataFrame(
        {
            "action": [r["content"] for r in rows],
            "propensity": [r["propensity"] for r in rows],
            "reward": [reward_of(r, reward) for r in rows],
        }
    )
    estimates = evaluate_log(frame, target)
    extra = {"logged_mean_reward": float(frame["reward"].mean()), "target": target}
    _print_estimates(list(estimates.values()), f"{policy}: target {target}", extra, as_json)


@app.command("report")
@friendly_errors
def report_command(
    key: str = typer.Argument(..., help="The experiment key."),
    metric: list[str] = typer.Option(
        ["conversion:Order Completed"], "--metric", "-m", help="Metric spec (repeatable)."
    ),
    guardrail: list[str] = typer.Option([], help="Metric name to treat as a guardrail."),
    cuped_days: float = typer.Option(0.0, help="Pre-exposure days for CUPED (0: off)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    chart_path: Path | None = typer.Option(None, "--chart", help="Write a PNG chart here."),
) -> None:
    """Report on an experiment served from the data directory (stop the server first)."""
    from personify.definitions import open_store
    from personify.experiments.metrics import check_cuped_days, check_guardrails, parse_metric
    from personify.experiments.report import chart, table, to_json
    from personify.experiments.serving import ExperimentService, open_experiment_stores
    from personify.experiments.sources import analyze_experiment, events_frame, metric_events
    from personify.platform import build

    metrics = [parse_metric(spec, set(guardrail)) for spec in metric]
    check_guardrails(metrics, guardrail)
    cuped = check_cuped_days(cuped_days)
    with build() as p:
        store = open_store(p.settings, p.clock)
        exposures, sticky = open_experiment_stores(p.settings)
        service = ExperimentService(
            store, lambda name, policy: None, exposures=exposures, sticky=sticky
        )
        try:
            events = events_frame(p.stores.events.scan(events=metric_events(metrics)))
            result = analyze_experiment(service, key, events, metrics, cuped_days=cuped)
        finally:
            service.close()
            store.close()
    if as_json:
        console.print_json(to_json(result))
    else:
        console.print(table(result))
    if chart_path is not None:
        chart(result, chart_path)


def _transition(action: str, key: str, variant: str | None) -> None:
    from personify.config import Settings
    from personify.definitions import open_store
    from personify.experiments.serving import set_status

    store = open_store(Settings())
    try:
        changed = set_status(store, key, action, "cli", variant=variant)
    finally:
        store.close()
    shipped = f", everyone gets {changed['shipped']!r}" if changed["status"] == "shipped" else ""
    console.print(
        f"experiment {key} is {changed['status']} (version {changed['version']}){shipped}"
    )


@app.command("start")
@friendly_errors
def start_command(key: str = typer.Argument(..., help="The experiment key.")) -> None:
    """Start an experiment (running servers pick it up within a second)."""
    _transition("start", key, None)


@app.command("stop")
@friendly_errors
def stop_command(key: str = typer.Argument(..., help="The experiment key.")) -> None:
    """Stop an experiment: its rule passes and the next rule decides."""
    _transition("stop", key, None)


@app.command("ship")
@friendly_errors
def ship_command(
    key: str = typer.Argument(..., help="The experiment key."),
    variant: str = typer.Option(..., help="The variant everyone gets from now on."),
) -> None:
    """Ship a variant: everyone gets it, and the test stops splitting traffic."""
    _transition("ship", key, variant)
