"""Helpers shared by the CLI modules: building the engine and printing errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from personify.errors import PersonifyError

console = Console()
err_console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a personify error's message and hint instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            err_console.print("[bold red]error:[/] invalid settings")
            for e in exc.errors(include_url=False):
                where = ".".join(str(x) for x in e["loc"]) or "settings"
                err_console.print(f"  • {escape(where)}: {escape(e['msg'])}")
            err_console.print("[yellow]hint:[/] check the PERSONIFY_* environment variables")
            raise typer.Exit(2) from None
        except PersonifyError as exc:
            # messages quote user input and patterns such as ^[a-z]...$: never Rich markup
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
            for problem in exc.problems:
                err_console.print(f"  • {escape(problem.field)}: {escape(problem.message)}")
            if exc.hint:
                err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}")
            raise typer.Exit(2 if exc.status < 500 else 1) from None

    return wrapper


def progress() -> Any:
    """The progress display long CLI jobs share (bar, count, elapsed time)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
