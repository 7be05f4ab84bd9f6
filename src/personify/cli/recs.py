"""``personify recs``: train, evaluate and look at product recommendations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table

from personify.cli.common import console, friendly_errors, progress
from personify.errors import InvalidInput, NotFound

app = typer.Typer(help="Product recommendations: train, evaluate, show.")

RETAIL_HINT = (
    "give --online-retail PATH or set PERSONIFY_DATASETS_DIR to the folder holding "
    "online_retail/online_retail.parquet"
)


def _retail_path(given: Path | None) -> Path:
    if given is not None:
        return given
    from personify.config import Settings

    datasets = Settings().datasets_dir
    if datasets is None:
        raise InvalidInput("no Online Retail file given", hint=RETAIL_HINT)
    return datasets / "online_retail" / "online_retail.parquet"


@app.command("train")
@friendly_errors
def train(
    online_retail: Path | None = typer.Option(
        None, "--online-retail", help="Train on this UCI Online Retail file instead of events."
    ),
    validation_days: float = typer.Option(
        92.0, help="Days at the end of the data held out to tune the hybrid's weights."
    ),
    promote: bool = typer.Option(True, help="Serve the new version right away."),
    as_json: bool = typer.Option(False, "--json", help="Print the registered version as JSON."),
) -> None:
    """Tune and fit the hybrid recommender, then register it as model 'recs'.

    Without --online-retail it learns from the event store (Product Viewed, Product Added,
    Order Completed) in PERSONIFY_DATA_DIR; stop `personify serve` first, which holds it.
    """
    from personify.config import Settings
    from personify.models.registry import ModelRegistry
    from personify.recs import publish

    settings = Settings()
    with progress() as bar:
        task = bar.add_task("reading events", total=3)
        if online_retail is not None:
            data = publish.from_online_retail(online_retail)
        else:
            data = _event_store_input(settings)
        bar.update(task, advance=1, description="tuning and fitting the hybrid")
        trained = publish.train(data, validation_days=validation_days)
        bar.update(task, advance=1, description="registering")
        version = publish.register(
            ModelRegistry(settings.data_dir / "models"), data, trained, promote=promote
        )
        bar.update(task, advance=1, description="done")
    if as_json:
        console.print_json(json.dumps(version.as_dict()))
        return
    table = Table("", "", title=f"model recs v{version.version}")
    table.add_row("source", data.source)
    table.add_row("events", f"{len(data.events):,}")
    table.add_row("users x items", f"{version.params['users']:,} x {version.params['items']:,}")
    table.add_row("weights", ", ".join(f"{k}={v:g}" for k, v in trained.model.weights.items()))
    for name, value in version.metrics.items():
        table.add_row(name, str(value))
    table.add_row("promoted", "yes" if version.promoted else "no")
    console.print(table)


def _event_store_input(settings: Any) -> Any:
    from personify.platform import build
    from personify.recs import publish
    from personify.recs.sources import read_event_store

    path = settings.data_dir / "events.duckdb"
    if not path.is_file():
        raise NotFound(
            f"no event store at {path}",
            hint="import or collect events first, or use --online-retail PATH",
        )
    rows = read_event_store(path)  # before build(), which opens the same file
    with build(settings) as engine:
        return publish.from_rows(rows, engine.stores.profiles)


@app.command("evaluate")
@friendly_errors
def evaluate(
    online_retail: Path | None = typer.Option(
        None,
        "--online-retail",
        help="The UCI Online Retail file (default: "
        "$PERSONIFY_DATASETS_DIR/online_retail/online_retail.parquet).",
    ),
    cutoff: str = typer.Option("2011-09-01", help="Train before this date, test from it on."),
    k: int = typer.Option(10, min=1, max=100, help="Length of each ranked list."),
    variant: list[str] = typer.Option(
        ["repeat", "new"], help="repeat (re-purchases count) and/or new (training items excluded)."
    ),
    model: list[str] = typer.Option([], help="Only these models (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    output: Path | None = typer.Option(None, help="Also write the report as JSON here."),
) -> None:
    """Every recommender side by side on the reference protocol (UCI Online Retail)."""
    from personify.recs.evaluation import run_reference

    path = _retail_path(online_retail)
    with progress() as bar:
        task = bar.add_task("reading", total=None)
        report = run_reference(
            path,
            cutoff=cutoff,
            k=k,
            variants=variant,
            models=model or None,
            on_step=lambda step: bar.update(task, description=step),
        )
    body = report.as_dict()
    if output is not None:
        output.write_text(json.dumps(body, indent=2) + "\n")
    if as_json:
        console.print_json(json.dumps(body))
        return
    for name in variant:
        table = Table(
            "model",
            "users",
            f"P@{k}",
            f"R@{k}",
            f"NDCG@{k}",
            f"MAP@{k}",
            "hit rate",
            "coverage",
            "novelty",
            "fit s",
            title=f"variant: {name}",
        )
        rows = sorted(
            (r for r in report.rows if r.variant == name), key=lambda r: -r.metrics["ndcg"]
        )
        for r in rows:
            m = r.metrics
            table.add_row(
                r.model,
                str(r.users),
                f"{m['precision']:.4f}",
                f"{m['recall']:.4f}",
                f"[bold]{m['ndcg']:.4f}[/]",
                f"{m['map']:.4f}",
                f"{m['hit_rate']:.3f}",
                f"{r.coverage:.3f}",
                f"{r.novelty:.2f}",
                f"{r.fit_s:.1f}",
            )
        console.print(table)
        if name in report.hybrid_weights:
            weights = report.hybrid_weights[name]
            console.print("hybrid weights: " + ", ".join(f"{a}={b:g}" for a, b in weights.items()))
    console.print(Panel(report.protocol.strip(), title="protocol"))


@app.command("show")
@friendly_errors
def show(
    user_id: str | None = typer.Option(None, "--user-id"),
    anonymous_id: str | None = typer.Option(None, "--anonymous-id"),
    email: str | None = typer.Option(None, "--email"),
    profile_id: str | None = typer.Option(None, "--profile-id"),
    similar: str | None = typer.Option(None, help="Show items similar to this item instead."),
    k: int = typer.Option(10, min=1, max=100),
    placement: str | None = typer.Option(None, help="home, product, cart or email."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What the registered model recommends to one person (none given: a new visitor)."""
    from personify.platform import build
    from personify.recs.serving import service_for

    given = {"user_id": user_id, "anonymous_id": anonymous_id, "email": email}
    chosen = [(kind, value) for kind, value in given.items() if value]
    if len(chosen) + (profile_id is not None) > 1 or (similar and (chosen or profile_id)):
        raise InvalidInput(
            "give one identity, or --similar ITEM, not several",
            hint="personify recs show --user-id 12347",
        )
    with build() as engine:
        service = service_for(engine)
        if similar is not None:
            result = service.similar(similar, k, placement)
            title = f"similar to {similar}"
        else:
            try:
                pid = profile_id or (engine.lookup(*chosen[0]) if chosen else None)
            except NotFound:
                if user_id is None:
                    raise
                # trained on a file whose customers were never imported: ask the model
                result = service.for_model_user(user_id, k, placement)
                pid = user_id
            else:
                result = service.for_profile(engine, pid, k, placement)
            title = f"for {pid or 'a new visitor'} ({result.strategy})"
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
        return
    table = Table("#", "item", "title", "price", "score", "reason", title=title)
    for i, item in enumerate(result.items, 1):
        price = "" if item.get("price") is None else f"{item['price']:.2f}"
        table.add_row(
            str(i),
            item["id"],
            item.get("title") or "",
            price,
            f"{item['score']:.3f}",
            item["reason"],
        )
    console.print(table)
    console.print(f"model recs v{result.model_version}")
