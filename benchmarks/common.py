"""Shared benchmark plumbing: a server subprocess, timing helpers, the results file."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

RESULTS = Path(__file__).parent / "results"
WRITE_KEY = "bench-write-key"
ADMIN_KEY = "bench-admin-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    argv: Sequence[str], port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, *argv],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server {argv} did not start")


def start_bare_app(module: str) -> tuple[subprocess.Popen[bytes], int]:
    """Serve ``benchmarks/<module>.py``'s FastAPI ``app`` with uvicorn (a baseline); the
    process and its port."""
    port = free_port()
    argv = ["-m", "uvicorn", f"{module}:app", "--port", str(port), "--log-level", "warning"]
    argv += ["--app-dir", str(Path(__file__).parent)]
    return start_server(argv, port), port


def start_personify(
    data_dir: str | Path, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """``personify serve`` on a free port over ``data_dir`` with the benchmark keys
    (``settings``: more PERSONIFY_ variables); the process and its port."""
    port = free_port()
    env = {
        "PERSONIFY_DATA_DIR": str(data_dir),
        "PERSONIFY_WRITE_KEYS": WRITE_KEY,
        "PERSONIFY_ADMIN_KEY": ADMIN_KEY,
        **(settings or {}),
    }
    return start_server(["-m", "personify.cli", "serve", "--port", str(port)], port, env), port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop (median of 3): how fast this VM is right now.

    Shared machines vary by tens of percent from hour to hour; compare runs through this.
    """
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        sum(range(30_000_000))
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def write_results(
    name: str, protocol: str, figures: dict[str, float], extra: dict[str, Any]
) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = {
        "name": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "calibration_s": calibrate(),
        },
        "command": f"make bench NAME={name}",
        "protocol": protocol,
        "figures": figures,
        **extra,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path


def print_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("figure", "value", title=title)
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


CACHE = Path(__file__).parent / ".cache"


def demo_data(events: int = 1_000_000) -> tuple[Path, Any]:
    """A data dir holding the demo storefront sized to at least ``events`` events.

    Built once into ``benchmarks/.cache`` (not committed) and reused by the benchmarks that
    need the demo's largest size; copy it before writing to it. Returns the directory and
    the ``StorefrontSpec`` (its ``end`` is the "now" of the data).
    """
    import shutil

    from personify.config import Settings
    from personify.demo.storefront import StorefrontSpec, estimate_events, generate
    from personify.platform import build

    customers = 1000
    while estimate_events(StorefrontSpec(customers=customers)) < events:
        customers = int(customers * 1.1) + 1
    spec = StorefrontSpec(customers=customers)
    target = CACHE / f"demo-{customers}"
    if (target / "ready").exists():
        return target, spec
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    t0 = time.perf_counter()
    with build(Settings(data_dir=target, write_keys="demo")) as p:
        p.ingest(generate(spec), "demo")
        p.drain(timeout=3600)
        stored = p.stores.events.count()
    (target / "ready").write_text(f"{stored}\n")
    print(f"built the demo data once: {stored:,} events in {time.perf_counter() - t0:.0f} s")
    return target, spec


def copy_of(source: Path, into: Path) -> Path:
    """A private copy of a data dir (the cached demo data stays untouched)."""
    import shutil

    target = into / "data"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock", "*.sock"))
    return target
