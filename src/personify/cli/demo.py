"""``personify demo``: a seeded synthetic storefront, ingested for real, then served."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from personify.cli.common import console, friendly_errors, progress

DEMO_WRITE_KEY = "demo-write-key"
DEMO_ADMIN_KEY = "demo-admin-key"


@friendly_errors
def demo(
    customers: int = typer.Option(1000, min=1, help="Synthetic customers (events scale with it)."),
    days: int = typer.Option(90, min=14, help="Days of history (at least 14)."),
    seed: int = typer.Option(7, help="Random seed (same seed, same storefront)."),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve when built."),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
) -> None:
    """Build the demo storefront through the real collection path, summarize, and serve."""
    import time
    from datetime import UTC, datetime

    from personify.config import Settings
    from personify.decide import DEMO_WORKSPACE
    from personify.demo.storefront import StorefrontSpec, estimate_events, generate
    from personify.platform import build
    from personify.segments.service import Segments
    from personify.segments.templates import TEMPLATES, template
    from personify.workspace import apply

    settings = Settings()
    if not settings.write_keys:
        settings = settings.model_copy(update={"write_keys": [f"{DEMO_WRITE_KEY}=demo"]})
    if not settings.admin_key:
        settings = settings.model_copy(update={"admin_key": DEMO_ADMIN_KEY})
    # The history ends today, so "days since the last order" means what it says now.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    spec = StorefrontSpec(customers=customers, days=days, seed=seed, end=today)
    started = time.perf_counter()
    p = build(settings)
    with progress() as bars:
        task = bars.add_task("collecting events", total=estimate_events(spec))
        p.processor.start()

        def stream() -> object:
            for message in generate(spec):
                bars.advance(task)
                yield message

        result = p.ingest(stream(), "demo", check_size=True)  # type: ignore[arg-type]
        bars.update(task, total=bars.tasks[task].completed)
        ptask = bars.add_task("building profiles", total=p.stores.log.head())
        while p.processor.position < p.stores.log.head():
            bars.update(ptask, completed=p.processor.position)
            time.sleep(0.1)
        bars.update(ptask, completed=p.stores.log.head())
    p.processor.stop()
    # The demo workspace: content, placements and rules, and the built-in segments.
    with console.status("building segments and loading the demo workspace"):
        apply(DEMO_WORKSPACE, p.stores.definitions, actor="demo")
        segments = Segments(p)
        # Parameters that suit a 90-day storefront (the decision rules use 40 days too).
        params: dict[str, dict[str, Any]] = {
            "lapsing_customer": {"inactive_for": "40d"},
            "frequent_browser": {"views": 5},
        }
        for name in TEMPLATES:
            segments.save(template(name, **params.get(name, {})), actor="demo")
        sizes = {row["key"]: row["size"] for row in segments.overview()}
    stats = p.stats()
    table = Table("figure", "value", title=f"demo storefront (seed {seed})")
    table.add_row("events accepted", f"{result.accepted:,}")
    table.add_row("already present (re-run)", f"{result.duplicates:,}")
    table.add_row("profiles", f"{stats['profiles']:,}")
    table.add_row("events stored", f"{stats['events']:,}")
    table.add_row("seconds", f"{time.perf_counter() - started:.1f}")
    for key, size in sizes.items():
        table.add_row(f"segment {key}", f"{size:,}")
    console.print(table)
    write_key = next(iter(settings.write_key_sources()))
    console.print(
        f"write key: [bold]{write_key}[/]   admin key: [bold]{settings.admin_key}[/]"
        f"   data: {settings.data_dir}"
    )
    p.close()
    if not serve_after:
        return
    p = build(settings, worker=True)
    import uvicorn

    from personify.api.app import create_app

    # soft_wrap: the command stays on one line however narrow the terminal, so it copies
    console.print(
        f"serving on http://{host}:{port} — try:\n"
        f"  curl -H 'Authorization: Bearer {settings.admin_key}' "
        f"'http://{host}:{port}/v1/profiles/lookup?user_id=user_0000005'",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    uvicorn.run(create_app(p), host=host, port=port, log_level="warning")
