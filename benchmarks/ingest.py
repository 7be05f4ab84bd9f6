"""Ingestion, profile freshness, profile lookup and Online Retail import (issue: foundation).

Protocol (printed into the results file):
* A fresh ``personify serve`` (embedded mode: SQLite log + state, DuckDB events) per run.
* The client, a separate process on the same 2-core machine, sends pre-serialized
  ``POST /v1/batch`` requests of 500 Segment messages (~180 KB, track/page/identify over
  20,000 users, realistic context with a user agent) from 4 keep-alive connections.
* events_per_s: messages acknowledged / wall time from first send to last acknowledgment,
  median of RUNS runs. bare_parse_events_per_s: the same batches, same client, against a
  bare FastAPI endpoint that only parses the JSON (the ceiling), measured in the same run.
* profile_lag_p99_s: every 10th batch carries a marker event for a fresh user; after its
  acknowledgment a poller asks ``/v1/profiles/lookup`` until the profile exists; p99 over
  all markers of all runs (includes the polling interval of 20 ms).
* profile_lookup_p99_ms: after ingestion, 2,000 lookups of random known users paced at
  200 requests/s (open loop, one connection); p99 of request latency.
* online_retail_import_s: ``personify import online-retail`` of the full 541,909-line file
  into a fresh data dir, wall time including profile building, median of RUNS runs.
* machine.calibration_s: a fixed pure-Python loop timed at the end of the run; this shared
  VM's speed varies by tens of percent over hours, so compare runs through it.
* cpu_us_per_event (diagnostic): CPU seconds used by the API process, by the processing
  worker and by the worker's writer processes (profiles, segments) per ingested event, from
  /proc, over each run (until the worker caught up).
* encrypt_pii_run (diagnostic): one more run with ``PERSONIFY_PRIVACY__ENCRYPT_PII=true``
  (PII sealed with AES-GCM in the log, events and profiles): its rate and CPU per event, to
  compare with cpu_us_per_event of the runs above.
* With BENCH_PYSPY=DIR (diagnostic, needs py-spy from the dev extras), the last run records
  a sampling profile of each process (GIL holder only, speedscope format) into DIR.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from common import (
    ADMIN_KEY,
    WRITE_KEY,
    median,
    percentile,
    print_table,
    start_bare_app,
    start_personify,
    stop,
    write_results,
)

RUNS = int(__import__("os").environ.get("BENCH_RUNS", "3"))
BATCHES = 400
BATCH_SIZE = 500
SENDERS = 4
USERS = 20_000
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def make_batches(seed: int) -> tuple[list[bytes], list[str | None]]:
    rng = random.Random(seed)
    bodies: list[bytes] = []
    markers: list[str | None] = []
    run = uuid.uuid4().hex[:8]
    for b in range(BATCHES):
        batch: list[dict[str, Any]] = []
        for _ in range(BATCH_SIZE):
            user = rng.randrange(USERS)
            kind = rng.choice(("track", "track", "track", "page", "identify"))
            msg: dict[str, Any] = {
                "type": kind,
                "messageId": uuid.uuid4().hex,
                "anonymousId": f"anon-{user}",
                "timestamp": "2026-11-01T10:00:00.000Z",
                "context": {
                    "userAgent": UA,
                    "timezone": "Europe/Paris",
                    "ip": "203.0.113.9",
                    "library": {"name": "bench", "version": "1"},
                },
            }
            if user % 3 == 0:
                msg["userId"] = f"user-{user}"
            if kind == "track":
                msg["event"] = rng.choice(("Product Viewed", "Product Added", "Order Completed"))
                msg["properties"] = {
                    "product_id": f"sku-{rng.randrange(500)}",
                    "price": 19.99,
                    "quantity": 1,
                    "revenue": 19.99,
                    "currency": "EUR",
                }
            elif kind == "page":
                msg["name"] = "Product"
                msg["properties"] = {"path": "/p/1", "url": "https://shop.example/p/1"}
            else:
                msg["userId"] = f"user-{user}"
                msg["traits"] = {"email": f"user{user}@example.com", "plan": "pro"}
            batch.append(msg)
        marker = None
        if b % 10 == 0:
            marker = f"marker-{run}-{b}"
            batch[-1] = {
                "type": "track",
                "userId": marker,
                "event": "Marker",
                "messageId": uuid.uuid4().hex,
            }
        bodies.append(orjson.dumps({"batch": batch, "sentAt": "2026-11-01T10:00:00.000Z"}))
        markers.append(marker)
    return bodies, markers


def send_all(
    url: str, bodies: list[bytes], markers: list[str | None], on_marker: Any = None
) -> float:
    """Send every body from SENDERS connections; return the wall time."""
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        with httpx.Client(auth=(WRITE_KEY, ""), timeout=60) as client:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                resp = client.post(
                    f"{url}/v1/batch",
                    content=bodies[i],
                    headers={"Content-Type": "application/json"},
                )
                if resp.status_code != 200:
                    failures.append(resp.text[:200])
                elif on_marker is not None and markers[i] is not None:
                    on_marker(markers[i], time.perf_counter())

    threads = [threading.Thread(target=worker) for _ in range(SENDERS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed: {failures[0]}")
    return elapsed


class MarkerPoller:
    """Polls each acknowledged marker user's profile until :meth:`ready` says it is there."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pending: dict[str, float] = {}
        self.lags: list[float] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def acked(self, marker: str, at: float) -> None:
        with self.lock:
            self.pending[marker] = at

    def ready(self, response: httpx.Response) -> bool:
        return response.status_code == 200

    def run(self) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as c:
            while not (self.done.is_set() and not self.pending):
                with self.lock:
                    todo = list(self.pending.items())
                for marker, acked in todo:
                    r = c.get(f"{self.url}/v1/profiles/lookup", params={"user_id": marker})
                    if self.ready(r):
                        with self.lock:
                            self.lags.append(time.perf_counter() - acked)
                            del self.pending[marker]
                time.sleep(0.02)


def lookup_latencies(url: str, n: int = 2000, rate: float = 200.0) -> list[float]:
    rng = random.Random(3)
    out: list[float] = []
    with httpx.Client(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as c:
        c.get(f"{url}/health")
        start = time.perf_counter()
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            user = rng.randrange(0, USERS, 3)
            t0 = time.perf_counter()
            r = c.get(f"{url}/v1/profiles/lookup", params={"user_id": f"user-{user}"})
            out.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"lookup failed: {r.status_code} {r.text[:200]}")
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(parent: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return int(out.split()[0])


def writer_pids(worker: int) -> list[int]:
    """The worker's writer processes (``personify.storage.sqlite.writer``)."""
    out = subprocess.run(
        ["pgrep", "-P", str(worker), "-f", "sqlite.writer import main"],
        capture_output=True,
        text=True,
    ).stdout
    return [int(pid) for pid in out.split()]


def profilers(api: int, worker: int) -> list[subprocess.Popen[bytes]]:
    """py-spy recorders on both server processes when BENCH_PYSPY names a directory."""
    out = os.environ.get("BENCH_PYSPY")
    if not out:
        return []
    Path(out).mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    spies = []
    for name, pid in (("api", api), ("worker", worker)):
        path = Path(out) / f"ingest-{name}.speedscope.json"
        argv = [str(spy), "record", "--gil", "--nonblocking", "--format", "speedscope"]
        argv += ["--rate", "200", "--pid", str(pid), "--output", str(path)]
        spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        print(f"profiling the {name} process into {path}")
    time.sleep(1.0)  # let py-spy attach before the first request
    return spies


def wait_caught_up(url: str) -> None:
    while httpx.get(f"{url}/health").json()["lag"]:
        time.sleep(0.02)


def ingest_runs(
    runs: int = RUNS, settings: dict[str, str] | None = None, baseline: bool = True
) -> dict[str, Any]:
    """``runs`` ingestion runs (``settings``: extra PERSONIFY_ variables for the server)."""
    rates, bare_rates, lags, lookups = [], [], [], []
    api_cpu, worker_cpu, writer_cpu = [], [], []
    for run in range(runs):
        bodies, markers = make_batches(seed=run)
        events = BATCHES * BATCH_SIZE
        if baseline:
            bare_rates.append(bare_parse_rate(bodies, markers))
        with tempfile.TemporaryDirectory() as data:
            srv, port = start_personify(data, settings)
            url = f"http://127.0.0.1:{port}"
            try:
                poller = MarkerPoller(url)
                poller.thread.start()
                worker = worker_pid(srv.pid)
                spies = profilers(srv.pid, worker) if run == runs - 1 and baseline else []
                writers = writer_pids(worker)
                cpu0 = (
                    cpu_seconds(srv.pid),
                    cpu_seconds(worker),
                    sum(cpu_seconds(w) for w in writers),
                )
                rates.append(events / send_all(url, bodies, markers, poller.acked))
                poller.done.set()
                poller.thread.join(timeout=120)
                lags.extend(poller.lags)
                wait_caught_up(url)
                api_cpu.append((cpu_seconds(srv.pid) - cpu0[0]) / events * 1e6)
                worker_cpu.append((cpu_seconds(worker) - cpu0[1]) / events * 1e6)
                writer_cpu.append((sum(cpu_seconds(w) for w in writers) - cpu0[2]) / events * 1e6)
                for spy in spies:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
                if run == runs - 1:
                    lookups = lookup_latencies(url)
                health = httpx.get(
                    f"{url}/v1/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
                ).json()
            finally:
                stop(srv)
        print(
            f"run {run + 1}{' ' + str(settings) if settings else ''}: {rates[-1]:,.0f} ev/s "
            f"(bare {bare_rates[-1] if bare_rates else float('nan'):,.0f}), "
            f"lag p99 {percentile(poller.lags, 99):.2f}s, health {health}"
        )
    return {
        "rates": rates,
        "bare": bare_rates,
        "lags": lags,
        "lookups": lookups,
        "api_cpu": api_cpu,
        "worker_cpu": worker_cpu,
        "writer_cpu": writer_cpu,
    }


def bare_parse_rate(bodies: list[bytes], markers: list[str | None]) -> float:
    """The same batches against a FastAPI endpoint that only parses them (the ceiling)."""
    bare, port = start_bare_app("bare_parse_app")
    try:
        return BATCHES * BATCH_SIZE / send_all(f"http://127.0.0.1:{port}", bodies, markers)
    finally:
        stop(bare)


def import_runs(datasets: Path | None) -> list[float]:
    if datasets is None:
        return []
    path = datasets / "online_retail" / "online_retail.parquet"
    times = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as data:
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "personify.cli", "import", "online-retail", str(path)],
                check=True,
                env={**__import__("os").environ, "PERSONIFY_DATA_DIR": data},
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    from personify.config import Settings

    ingest = ingest_runs()
    sealed = ingest_runs(1, {"PERSONIFY_PRIVACY__ENCRYPT_PII": "true"}, baseline=False)
    imports = import_runs(Settings().datasets_dir)
    figures = {
        "events_per_s": round(median(ingest["rates"])),
        "bare_parse_events_per_s": round(median(ingest["bare"])),
        "profile_lag_p99_s": round(percentile(ingest["lags"], 99), 3),
        "profile_lookup_p99_ms": round(percentile(ingest["lookups"], 99) * 1000, 2),
    }
    if imports:
        figures["online_retail_import_s"] = round(median(imports), 1)
    extra = {
        "runs": {
            "events_per_s": [round(r) for r in ingest["rates"]],
            "bare_parse_events_per_s": [round(r) for r in ingest["bare"]],
            "online_retail_import_s": [round(t, 1) for t in imports],
        },
        "ratio_to_bare_parse": round(
            figures["events_per_s"] / figures["bare_parse_events_per_s"], 3
        ),
        "markers": len(ingest["lags"]),
        "profile_lag_median_s": round(median(ingest["lags"]), 3) if ingest["lags"] else None,
        "profile_lookup_median_ms": round(median(ingest["lookups"]) * 1000, 2),
        "cpu_us_per_event": {
            "api_process": round(median(ingest["api_cpu"]), 1),
            "worker_process": round(median(ingest["worker_cpu"]), 1),
            "writer_processes": round(median(ingest["writer_cpu"]), 1),
        },
        "encrypt_pii_run": {
            "events_per_s": round(sealed["rates"][0]),
            "cpu_us_per_event": {
                "api_process": round(sealed["api_cpu"][0], 1),
                "worker_process": round(sealed["worker_cpu"][0], 1),
                "writer_processes": round(sealed["writer_cpu"][0], 1),
            },
        },
    }
    path = write_results("ingest", __doc__ or "", figures, extra)
    print_table(
        "ingest",
        [
            (k, f"{v:,}")
            for k, v in {**figures, **{"ratio_to_bare_parse": extra["ratio_to_bare_parse"]}}.items()
        ],
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
