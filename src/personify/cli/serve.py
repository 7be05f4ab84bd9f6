"""``personify serve``: the API, the processor and (later) the scheduler in one process."""

from __future__ import annotations

import typer

from personify.cli.common import console, friendly_errors


@friendly_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
) -> None:
    """Serve the collector, profiles and admin API (embedded mode by default)."""
    import uvicorn

    from personify.api.app import create_app
    from personify.platform import build

    p = build(worker=True)
    if not p.settings.write_keys:
        console.print(
            "[yellow]no write keys configured: the collector will refuse events "
            "(set PERSONIFY_WRITE_KEYS)[/]"
        )
    console.print(f"personify serving on http://{host}:{port}  (data: {p.settings.data_dir})")
    app = create_app(p)
    from personify.profiles.worker import settle_heap

    settle_heap()  # ingestion allocates heavily; keep the collector off the start-up heap
    uvicorn.run(app, host=host, port=port, log_level=log_level)
