"""``personify segments``: define, inspect, dry-run, export and rebuild segments.

These commands open the data directory directly (embedded mode). While ``personify serve``
runs, use the HTTP API (``/v1/segments``) instead: the server's worker owns the event store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer
import yaml
from rich.table import Table

from personify.cli.common import console, friendly_errors
from personify.errors import InvalidInput

app = typer.Typer(
    help="Segments: who a rule, experiment or journey applies to.", no_args_is_help=True
)
ACTOR = "cli"


def _read_body(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", hint="check the path") from None
    try:
        body = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput(
            f"{path} must hold one segment object", hint="see `personify segments templates`"
        )
    return body


def _print(data: Any) -> None:
    console.print_json(orjson.dumps(data).decode())


@app.command("list")
@friendly_errors
def list_segments(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every segment with its kind, version and current size."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        rows = Segments(p).overview()
    if as_json:
        _print(rows)
        return
    table = Table("key", "name", "kind", "version", "size", title="segments")
    for r in rows:
        table.add_row(r["key"], r["name"], r["kind"], str(r["version"]), f"{r['size']:,}")
    console.print(table)


@app.command("show")
@friendly_errors
def show(key: str) -> None:
    """A segment's definition, size and versions."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        s = Segments(p)
        _print({**s.describe(s.get(key)), "versions": len(s.versions(key))})


@app.command("save")
@friendly_errors
def save(file: Path = typer.Argument(..., help="A YAML or JSON file with one segment.")) -> None:
    """Validate and save a segment (a new version if it exists); members are computed now."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        s = Segments(p)
        saved = s.save(_read_body(file), ACTOR)
        info = s.describe(saved)
    console.print(f"saved [bold]{saved.key}[/] v{saved.version}: {info['size']:,} members")


@app.command("dry-run")
@friendly_errors
def dry_run(
    file: Path = typer.Argument(None, help="A YAML or JSON file with a segment or condition."),
    condition: str = typer.Option(None, help="The condition as JSON, instead of a file."),
    sample: int = typer.Option(10, help="How many matching profile ids to show."),
) -> None:
    """Count the profiles a condition matches now, without saving anything."""
    from personify.platform import build
    from personify.segments.service import Segments

    if (file is None) == (condition is None):
        raise InvalidInput(
            "give a file or --condition",
            hint='e.g. --condition \'{"computed.orders": {"$gte": 2}}\'',
        )
    if condition is not None:
        try:
            body: dict[str, Any] = {"condition": orjson.loads(condition)}
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"--condition is not JSON: {exc}") from None
    else:
        body = _read_body(file)
        if "condition" not in body and "members" not in body:
            body = {"condition": body}
    with build() as p:
        result = Segments(p).dry_run(body, sample)
    console.print(f"[bold]{result['count']:,}[/] profiles match now ({result['at']})")
    for pid in result["sample"]:
        console.print(f"  {pid}")


@app.command("members")
@friendly_errors
def members(
    key: str,
    out: Path = typer.Option(None, help="Write all members to this .csv or .parquet file."),
    limit: int = typer.Option(20, help="How many to print when not writing a file."),
) -> None:
    """Print members, or export all of them (CSV or Parquet by the file's extension)."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        s = Segments(p)
        if out is None:
            table = Table("profile_id", "entered_at", title=f"{key} members")
            for m in s.members(key, limit):
                table.add_row(m["profile_id"], m["entered_at"])
            console.print(table)
            return
        fmt = out.suffix.lstrip(".").lower()
        if fmt not in ("csv", "parquet"):
            raise InvalidInput(
                f"cannot tell the format of {out.name}", hint="name the file .csv or .parquet"
            )
        data = s.export(key, fmt)
    out.write_bytes(data)
    console.print(f"wrote {out}")


@app.command("size")
@friendly_errors
def size(
    key: str,
    start: str = typer.Option(None, help="ISO time (default: first entry)."),
    end: str = typer.Option(None, help="ISO time (default: now)."),
    every: str = typer.Option("1d", help="Step, e.g. 1h, 1d, 1w."),
) -> None:
    """The segment's size over time, from its membership history."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        points = Segments(p).size_over_time(key, start, end, every)
    top = max((pt["size"] for pt in points), default=0) or 1
    table = Table("at", "size", "", title=f"{key} size")
    for pt in points:
        table.add_row(pt["at"], f"{pt['size']:,}", "█" * round(30 * pt["size"] / top))
    console.print(table)


@app.command("rebuild")
@friendly_errors
def rebuild(
    keys: list[str] = typer.Argument(None, help="Segments to rebuild (default: all)."),
) -> None:
    """Recompute segments from the whole event history."""
    import time

    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p, console.status("rebuilding segments from the event history"):
        started = time.perf_counter()
        sizes = Segments(p).rebuild(keys or None)
        took = time.perf_counter() - started
    for key, n in sizes.items():
        console.print(f"{key}: {n:,} members")
    console.print(f"rebuilt {len(sizes)} segment(s) in {took:.1f} s")


@app.command("templates")
@friendly_errors
def templates() -> None:
    """Built-in templates and their parameters."""
    from personify.segments.templates import describe_templates

    table = Table("template", "parameters", "description", title="segment templates")
    for t in describe_templates():
        params = ", ".join(f"{k}={v}" for k, v in t["params"].items())
        table.add_row(t["name"], params, t["segment"]["description"])
    console.print(table)


@app.command("from-template")
@friendly_errors
def from_template(
    name: str,
    key: str = typer.Option(None, help="Save under another key."),
    param: list[str] = typer.Option(None, help="name=value (repeatable), e.g. within=48h."),
) -> None:
    """Create a segment from a built-in template."""
    from personify.platform import build
    from personify.segments.service import Segments

    params: dict[str, Any] = {}
    for item in param or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise InvalidInput(
                f"--param {item!r} is not name=value", hint="e.g. --param within=48h"
            )
        try:
            params[k] = yaml.safe_load(v)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidInput(
                f"--param {item!r}: the value is not valid YAML ({problem})",
                hint="write name=value with a YAML value: a number (min_orders=3), "
                "text (within=48h; quote text with YAML signs: name='\"a [b\"'), "
                "or a list (ids=[1, 2])",
            ) from None
    with build() as p:
        s = Segments(p)
        saved = s.from_template(name, ACTOR, key, params)
        info = s.describe(saved)
    console.print(f"saved [bold]{saved.key}[/] v{saved.version}: {info['size']:,} members")


@app.command("history")
@friendly_errors
def history(key: str) -> None:
    """Every version of a segment and who changed it."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        versions = Segments(p).versions(key)
    table = Table("version", "at", "by", "deleted", title=f"{key} versions")
    for v in versions:
        table.add_row(str(v["version"]), v["created_at"], v["actor"], "yes" if v["deleted"] else "")
    console.print(table)


@app.command("rollback")
@friendly_errors
def rollback(key: str, version: int) -> None:
    """Make an earlier version current again (as a new version)."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        done = Segments(p).rollback(key, version, ACTOR)
    console.print(f"{key} is now v{done.version} (the body of v{version})")


@app.command("delete")
@friendly_errors
def delete(key: str) -> None:
    """Delete a segment (its members exit; its versions stay)."""
    from personify.platform import build
    from personify.segments.service import Segments

    with build() as p:
        Segments(p).delete(key, ACTOR)
    console.print(f"deleted {key}")
