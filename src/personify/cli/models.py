"""``personify train ...`` and ``personify models ...``: train, register, inspect, score.

Training commands show progress bars and register the result as the next version of the
model (promoted unless ``--no-promote``). Batch jobs read ``events.duckdb`` directly, so run
them while ``personify serve`` is stopped (DuckDB lets one process write the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from personify.cli.common import console, friendly_errors, progress

train_app = typer.Typer(help="Train churn / purchase models on events or any customer CSV.")
app = typer.Typer(help="Registered models: list, promote, roll back, report, score.")


class _Bars:
    """Adapts the training callbacks ``(step, done, total)`` to Rich progress bars."""

    def __init__(self, bars: Any) -> None:
        self._bars = bars
        self._tasks: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if self._bars is None:  # --json: keep stdout for the JSON document
            return
        if step not in self._tasks:
            self._tasks[step] = self._bars.add_task(step, total=total)
        self._bars.update(self._tasks[step], completed=done, total=total)


def _bars(as_json: bool) -> Any:
    """Progress bars, or nothing when the output must be pure JSON."""
    from contextlib import nullcontext

    return nullcontext(None) if as_json else progress()


def _service() -> Any:
    from personify.config import Settings
    from personify.models.service import ModelService

    return ModelService(Settings())


def _profiling_consent() -> Any:
    """Only profiles whose ``profiling`` consent allows it are scored (issue 6)."""
    from personify.config import Settings
    from personify.privacy.standalone import consent_check

    return consent_check(Settings(), "profiling")


def _print_result(meta: Any, metrics: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({"model": meta.as_dict()}, default=str))
        return
    table = Table("metric", "value", title=f"{meta.name} v{meta.version} ({meta.kind})")
    for key in ("roc_auc", "logistic_roc_auc", "recency_roc_auc"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    for learner in ("lightgbm", "logistic"):
        if isinstance(metrics.get(learner), dict):
            mean, std = metrics[learner]["mean"], metrics[learner]["std"]
            table.add_row(f"{learner} roc_auc", f"{mean['roc_auc']:.4f} ± {std['roc_auc']:.4f}")
            table.add_row(f"{learner} pr_auc", f"{mean['pr_auc']:.4f}")
    if "holdout" in metrics:
        for key in ("pr_auc", "log_loss", "brier"):
            table.add_row(key, f"{metrics['holdout'][key]:.4f}")
    table.add_row("top-decile lift", f"{metrics['lift'][0]['lift']:.2f}")
    table.add_row("protocol", metrics["protocol"])
    table.add_row("promoted", "yes" if meta.promoted else "no")
    console.print(table)


def _train_events(
    target: str,
    cutoff: str | None,
    horizon: int,
    learner: str,
    name: str | None,
    promote: bool,
    online_retail: Path | None,
    as_json: bool,
) -> None:
    from personify.models.training import train_events

    service = _service()
    con = service.event_connection(online_retail)
    try:
        if cutoff is None:
            last = con.execute('SELECT MAX("timestamp") FROM events').fetchone()[0]
            if last is None:
                from personify.errors import InvalidInput

                raise InvalidInput("the event store is empty", hint="collect events first")
            import pandas as pd

            cutoff = (pd.Timestamp(last) - pd.Timedelta(days=horizon)).isoformat()
        with _bars(as_json) as bars:
            result = train_events(
                con,
                service.live_events(con) if online_retail is None else "events",
                cutoff=cutoff,
                horizon_days=horizon,
                target=target,
                learner=learner,  # type: ignore[arg-type]
                progress=_Bars(bars),
                # profiles only train with profiling consent; a file import has no profiles
                consent=_profiling_consent() if online_retail is None else None,
            )
    finally:
        con.close()
    meta = service.register(name or target, result, promote=promote)
    _print_result(meta, result.metrics, as_json)


MAX_HORIZON_DAYS = 3650  # ten years: longer windows are mistakes, and overflow the dates


def _moment(value: str | None) -> str | None:
    """A date option checked before any work: the model pipeline reads it with pandas,
    whose times run from 1677 to 2262 (a later date used to end in a traceback)."""
    if value is None:
        return None
    import pandas as pd

    try:
        moment = pd.Timestamp(value)
        if moment.tzinfo is not None:
            moment.tz_convert("UTC")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        raise typer.BadParameter(
            f"{value!r} is not a usable date ({exc}); give one such as 2026-11-01 or "
            "2026-11-01T00:00:00Z, between 1970 and 2200"
        ) from None
    if not 1970 <= moment.year <= 2200:
        raise typer.BadParameter(f"{value!r} is outside 1970-2200; give the date you mean")
    return value


_CUTOFF = typer.Option(
    None,
    callback=_moment,
    help="Evaluate as of this date; default: the last event minus the horizon.",
)
_HORIZON = typer.Option(
    90, min=1, max=MAX_HORIZON_DAYS, help="Label window in days after the cutoff."
)
_LEARNER = typer.Option("lightgbm", help="lightgbm (default) or logistic.")
_PROMOTE = typer.Option(True, "--promote/--no-promote", help="Serve the new version.")
_RETAIL = typer.Option(None, help="Train on the UCI Online Retail file instead of the store.")
_JSON = typer.Option(False, "--json", help="Print JSON.")


@train_app.command("churn")
@friendly_errors
def train_churn(
    cutoff: str | None = _CUTOFF,
    horizon: int = _HORIZON,
    learner: str = _LEARNER,
    name: str | None = typer.Option(None, help="Registry name (default: churn)."),
    promote: bool = _PROMOTE,
    online_retail: Path | None = _RETAIL,
    as_json: bool = _JSON,
) -> None:
    """Churn: no order in the HORIZON days after the cutoff (time split, recency baseline)."""
    _train_events("churn", cutoff, horizon, learner, name, promote, online_retail, as_json)


@train_app.command("purchase")
@friendly_errors
def train_purchase(
    cutoff: str | None = _CUTOFF,
    horizon: int = _HORIZON,
    learner: str = _LEARNER,
    name: str | None = typer.Option(None, help="Registry name (default: purchase)."),
    promote: bool = _PROMOTE,
    online_retail: Path | None = _RETAIL,
    as_json: bool = _JSON,
) -> None:
    """Purchase propensity: any order in the HORIZON days after the cutoff."""
    _train_events("purchase", cutoff, horizon, learner, name, promote, online_retail, as_json)


@train_app.command("csv")
@friendly_errors
def train_csv(
    path: Path = typer.Argument(..., help="A CSV file with one row per customer."),
    label: str = typer.Option(..., help="The yes/no column to predict."),
    id_column: str | None = typer.Option(None, help="A customer id column to leave out."),
    name: str = typer.Option("churn", help="Registry name."),
    learner: str = _LEARNER,
    folds: int = typer.Option(5, min=2, help="Cross-validation folds."),
    repeats: int = typer.Option(3, min=1, help="Cross-validation repeats."),
    search_seconds: float = typer.Option(
        0.0, min=0, help="Spend up to this long searching LightGBM hyper-parameters first."
    ),
    promote: bool = _PROMOTE,
    as_json: bool = _JSON,
) -> None:
    """Train on a customer table: repeated stratified CV beside the logistic baseline."""
    from personify.models.tables import read_customer_table
    from personify.models.training import search_lightgbm, train_table

    table, y = read_customer_table(path, label, id_column)
    service = _service()
    params: dict[str, Any] = {}
    search: dict[str, Any] | None = None
    with _bars(as_json) as bars:
        if search_seconds > 0 and learner == "lightgbm":
            search = search_lightgbm(table, y, budget_s=search_seconds, progress=_Bars(bars))
            params = search["best_params"]
        result = train_table(
            table,
            y,
            target=name,
            learner=learner,  # type: ignore[arg-type]
            params=params,
            folds=folds,
            repeats=repeats,
            progress=_Bars(bars),
        )
    result.data_window["file"] = str(path)
    if search is not None:
        result.metrics["search"] = {
            "trials": len(search["trials"]),
            "best_roc_auc_3fold": search["best_roc_auc"],
            "best_params": search["best_params"],
        }
    meta = service.register(name, result, promote=promote)
    _print_result(meta, result.metrics, as_json)


@train_app.command("clv")
@friendly_errors
def train_clv(
    end: str | None = typer.Option(
        None, callback=_moment, help="Fit on orders up to this date (default: last)."
    ),
    horizon: int = typer.Option(90, min=1, max=MAX_HORIZON_DAYS, help="Forecast window in days."),
    evaluate: bool = typer.Option(
        False, help="Also compare with the gradient-boosting regressor on a time split."
    ),
    name: str = typer.Option("clv", help="Registry name."),
    promote: bool = _PROMOTE,
    online_retail: Path | None = _RETAIL,
    as_json: bool = _JSON,
) -> None:
    """Lifetime value: BG/NBD + Gamma-Gamma fitted by maximum likelihood on order history."""
    import pandas as pd

    from personify.models.value import compare_value_models, fit_clv

    service = _service()
    con = service.event_connection(online_retail)
    try:
        if end is None:
            last = con.execute('SELECT MAX("timestamp") FROM events').fetchone()[0]
            end = str(last) if last is not None else "1970-01-01"
        with _bars(as_json) as bars:
            step = _Bars(bars)
            step("fitting BG/NBD and Gamma-Gamma", 0, 1)
            source = service.live_events(con) if online_retail is None else "events"
            model = fit_clv(con, source, end=end, horizon_days=horizon)
            step("fitting BG/NBD and Gamma-Gamma", 1, 1)
            metrics: dict[str, Any] = {
                "bgnbd_log_likelihood": model.bgnbd.log_likelihood_,
                "gamma_gamma_log_likelihood": model.gamma_gamma.log_likelihood_,
                "converged": model.bgnbd.converged_ and model.gamma_gamma.converged_,
            }
            if evaluate:
                step("time-split comparison", 0, 1)
                cutoff = (pd.Timestamp(end) - pd.Timedelta(days=horizon)).isoformat()
                metrics["comparison"] = compare_value_models(
                    con, source, cutoff=cutoff, horizon_days=horizon
                )
                step("time-split comparison", 1, 1)
    finally:
        con.close()
    meta = service.registry.register(
        name,
        model,
        kind="clv",
        features=["x", "t_x", "T", "monetary"],
        params={**model.bgnbd.params_, **model.gamma_gamma.params_, "weeks": model.weeks},
        metrics=metrics,
        data_window={"orders_until": model.fitted_to, "horizon_days": horizon},
        promote=promote,
    )
    if as_json:
        console.print_json(json.dumps({"model": meta.as_dict()}, default=str))
        return
    table = Table("parameter", "value", title=f"{meta.name} v{meta.version} (clv)")
    for key, value in meta.params.items():
        table.add_row(key, f"{value:.4f}")
    for key, value in metrics.items():
        table.add_row(
            key, json.dumps(value, default=str) if isinstance(value, dict) else str(value)
        )
    console.print(table)


@app.command("cluster")
@friendly_errors
def cluster(
    method: str = typer.Option("kmeans", help="kmeans, dbscan or ward."),
    k_min: int = typer.Option(2, min=2, help="Fewest clusters to try."),
    k_max: int = typer.Option(8, min=2, help="Most clusters to try."),
    as_of: str | None = typer.Option(
        None, callback=_moment, help="Features as of this time (default: now)."
    ),
    segments_yaml: Path | None = typer.Option(
        None, help="Write one segment per cluster to this workspace YAML file."
    ),
    online_retail: Path | None = _RETAIL,
    as_json: bool = _JSON,
) -> None:
    """Micro-segments: cluster customers, describe them, write ``scores.cluster``."""
    import yaml

    from personify.models.clustering import cluster_customers, cluster_segments
    from personify.models.features import build_features
    from personify.models.service import now_iso
    from personify.storage.sqlite.scores import SqlScoreStore

    service = _service()
    when = as_of or now_iso()
    con = service.event_connection(online_retail)
    try:
        with _bars(as_json) as bars:
            step = _Bars(bars)
            step("clustering", 0, 1)
            source = service.live_events(con) if online_retail is None else "events"
            frame = build_features(con, source, as_of=when)
            result = cluster_customers(
                frame,
                method=method,  # type: ignore[arg-type]
                k_range=range(k_min, k_max + 1),
            )
            step("clustering", 1, 1)
    finally:
        con.close()
    meta = service.registry.register(
        "cluster",
        result,
        kind="clusters",
        features=list(result.profiles.columns.drop("size")),
        params={"method": method, "k": result.k},
        metrics={"silhouette": result.silhouette, "davies_bouldin": result.davies_bouldin},
        data_window={"features_as_of": when},
        promote=True,
    )
    store = SqlScoreStore.open(service.settings.data_dir / "scores.sqlite")
    try:
        labels = {str(k): float(v) for k, v in result.labels.items() if v >= 0}
        store.put("cluster", meta.version, labels, at=when)
    finally:
        store.close()
    segments = cluster_segments(result)
    if segments_yaml is not None:
        body = {
            "segments": {s["key"]: {k: v for k, v in s.items() if k != "key"} for s in segments}
        }
        segments_yaml.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    if as_json:
        sizes = result.labels.value_counts().to_dict()
        console.print_json(
            json.dumps(
                {
                    "version": meta.version,
                    "method": method,
                    "k": result.k,
                    "silhouette": result.silhouette,
                    "davies_bouldin": result.davies_bouldin,
                    "clusters": [
                        {"cluster": c, "size": int(sizes.get(c, 0)), "description": d}
                        for c, d in sorted(result.descriptions.items())
                    ],
                    "segments": segments,
                },
                default=str,
            )
        )
        return
    table = Table("cluster", "customers", "description", title=f"{method}: k = {result.k}")
    sizes = result.labels.value_counts().to_dict()
    for c, words in sorted(result.descriptions.items()):
        table.add_row(str(c), f"{int(sizes.get(c, 0)):,}", words)
    console.print(table)
    console.print(
        f"silhouette {result.silhouette:.3f}, Davies-Bouldin {result.davies_bouldin:.3f}; "
        "scores.cluster written"
        + (f"; segments in {segments_yaml} (personify apply it)" if segments_yaml else "")
    )


@app.command("list")
@friendly_errors
def list_models(as_json: bool = _JSON) -> None:
    """Every registered model version, newest last."""
    registry = _service().registry
    rows = [m for name in registry.names() for m in registry.versions(name)]
    if as_json:
        console.print_json(json.dumps([m.as_dict() for m in rows], default=str))
        return
    table = Table("name", "version", "kind", "created", "roc_auc", "serving", title="models")
    for m in rows:
        auc = m.metrics.get("roc_auc")
        table.add_row(
            m.name,
            str(m.version),
            m.kind,
            m.created_at,
            f"{auc:.4f}" if isinstance(auc, float) else "",
            "●" if m.promoted else "",
        )
    console.print(table)


@app.command("promote")
@friendly_errors
def promote(name: str, version: int) -> None:
    """Serve VERSION of NAME from now on."""
    meta = _service().registry.promote(name, version)
    console.print(f"{meta.name} v{meta.version} is now serving")


@app.command("rollback")
@friendly_errors
def rollback(name: str) -> None:
    """Serve the version of NAME that was promoted before the current one."""
    meta = _service().registry.rollback(name)
    console.print(f"{meta.name} rolled back to v{meta.version}")


@app.command("report")
@friendly_errors
def report(
    name: str,
    version: int | None = typer.Option(None, help="A version (default: the serving one)."),
    as_json: bool = _JSON,
) -> None:
    """Metrics, data window, parameters and the most important features of a model."""
    body = _service().report(name, version)
    if as_json:
        console.print_json(json.dumps(body, default=str))
        return
    table = Table("field", "value", title=f"{body['name']} v{body['version']}")
    table.add_row("kind", body["kind"])
    table.add_row("created", body["created_at"])
    table.add_row("serving", "yes" if body["promoted"] else "no")
    for key, value in body["data_window"].items():
        table.add_row(f"window: {key}", str(value))
    for key in ("roc_auc", "logistic_roc_auc", "recency_roc_auc", "protocol"):
        if key in body["metrics"]:
            table.add_row(key, str(body["metrics"][key]))
    console.print(table)
    drift = body.get("drift")
    if drift:
        flag = "[yellow]retrain[/]" if drift["retrain"] else "stable"
        console.print(
            f"drift at the last scoring ({drift['at']}): {flag}; over PSI {drift['threshold']}: "
            f"{', '.join(drift['drifted'][:8]) or 'none'}"
        )
    retraining = body["retraining"]
    if retraining["due"]:
        console.print(f"[yellow]retraining due:[/] {'; '.join(retraining['reasons'])}")
    if "importance" in body:
        imp = Table("feature", "importance", title="global importance")
        for feature, value in body["importance"].items():
            imp.add_row(feature, f"{value:.3f}")
        console.print(imp)


@app.command("score")
@friendly_errors
def score(
    name: str,
    as_of: str | None = typer.Option(
        None, callback=_moment, help="Score as of this time (default: now)."
    ),
    as_json: bool = _JSON,
) -> None:
    """Score every profile with the serving version of NAME into scores.sqlite."""
    with _bars(as_json) as bars:
        step = _Bars(bars)
        step(f"scoring with {name}", 0, 1)
        result = _service().score(name, as_of=as_of, consent=_profiling_consent())
        step(f"scoring with {name}", 1, 1)
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    console.print(
        f"scored {result['scored']:,} profiles with {name} v{result['version']}"
        f" ({result['skipped_without_consent']:,} skipped without consent)"
    )
    drift = result.get("drift")
    if drift and drift["retrain"]:
        console.print(
            f"[yellow]drift:[/] {', '.join(drift['drifted'][:8])} moved (PSI > "
            f"{drift['threshold']}); consider retraining"
        )


@app.command("retrain")
@friendly_errors
def retrain(
    force: bool = typer.Option(False, "--force", help="Retrain every scoring model, due or not."),
    as_json: bool = _JSON,
) -> None:
    """Retrain, promote and rescore the churn/purchase models that drifted or aged.

    The server does this by itself every ``models.retrain_check_hours``; this runs the same
    check once on a stopped server's data directory (e.g. from cron).
    """
    from personify.models.schedule import retrain_due

    service = _service()
    con = service.event_connection()
    try:
        with console.status("checking which models are due"):
            done = retrain_due(service, con, consent=_profiling_consent(), force=force)
    finally:
        con.close()
    if as_json:
        console.print_json(json.dumps(done, default=str))
        return
    table = Table("model", "retrained", "why", "version", "scored", title="retraining")
    for entry in done:
        table.add_row(
            entry["model"],
            "yes" if entry["retrained"] else "no",
            entry["why"],
            str(entry.get("version", "")),
            str(entry.get("scored", "")),
        )
    console.print(table)
