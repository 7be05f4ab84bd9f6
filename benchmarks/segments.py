"""Segments: ingestion with 50 live segments, membership lag, full rebuild (issue: segments).

Protocol (printed into the results file):
* events_per_s_with_50_segments: the ingest benchmark's traffic (``benchmarks/ingest.py``:
  POST /v1/batch of 500 messages from 4 connections, embedded ``personify serve``) with 50
  segments defined before the run: 20 on profile fields, 15 windowed event counts/sums with
  filters, 10 sequences with absence, 5 relative-time conditions. The batches are stamped as
  sent at the run's start (``timestamp`` = ``sentAt``), so clock-skew correction places each
  event at its arrival time, as for live traffic (the baseline too); wall time from the first
  send until the last acknowledgment AND the segment engine caught up (``/health`` lag 0),
  median of RUNS runs. ``events_per_s_no_segments`` is the same with no segment, measured
  in the same run (the baseline).
* membership_lag_p99_s: every 10th batch carries a ``Marker`` event for a fresh user; segment
  ``marked`` holds whoever sent one. After the acknowledgment a poller asks
  ``/v1/profiles/lookup`` (20 ms interval) until ``marked`` shows in the profile's segments;
  p99 over all markers of all runs, under the full ingest load.
* rebuild_1m_events_s: the demo storefront sized to about 1,000,000 events is imported into
  an embedded data dir; then all 50 segments are rebuilt from the event history
  (``Segments.rebuild()``: clause states replayed from DuckDB, every profile evaluated);
  median of 3 rebuilds.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
from common import (
    ADMIN_KEY,
    copy_of,
    demo_data,
    median,
    percentile,
    print_table,
    start_personify,
    stop,
    write_results,
)
from ingest import (
    BATCH_SIZE,
    BATCHES,
    MarkerPoller,
    make_batches,
    send_all,
    wait_caught_up,
)

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def fifty_segments() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"key": "marked", "name": "Sent a marker", "condition": {"$event": {"name": "Marker"}}}
    ]
    for i in range(19):
        out.append(
            {
                "key": f"profile_{i}",
                "name": f"Profile rule {i}",
                "condition": {
                    "$or": [
                        {"computed.orders": {"$gte": 1 + i % 5}},
                        {"traits.plan": "pro", "computed.sessions": {"$gte": i}},
                    ]
                },
            }
        )
    for i in range(15):
        measure: dict[str, Any] = (
            {"count": {"$gte": 2 + i % 3}}
            if i % 2
            else {"sum": {"property": "revenue", "value": {"$gte": 20 * (1 + i % 4)}}}
        )
        out.append(
            {
                "key": f"window_{i}",
                "name": f"Windowed behaviour {i}",
                "condition": {
                    "$event": {
                        "name": ["Product Viewed", "Product Added", "Order Completed"][i % 3],
                        "where": {
                            "properties.product_id": {"$in": [f"sku-{j}" for j in range(i, 500, 7)]}
                        },
                        "within": f"{1 + i % 7}d",
                        **measure,
                    }
                },
            }
        )
    for i in range(10):
        out.append(
            {
                "key": f"sequence_{i}",
                "name": f"Sequence {i}",
                "condition": {
                    "$sequence": {
                        "first": {"name": "Product Added"},
                        "notFollowedBy": {"name": "Order Completed"},
                        "within": f"{1 + i}h",
                    }
                },
            }
        )
    for i in range(5):
        out.append(
            {
                "key": f"recent_{i}",
                "name": f"Relative time {i}",
                "condition": {"computed.last_seen": {"$newerThan": f"{1 + i}d"}},
            }
        )
    assert len(out) == 50
    return out


def define(url: str, segments: list[dict[str, Any]]) -> None:
    with httpx.Client(headers=ADMIN, timeout=60) as c:
        for body in segments:
            r = c.post(f"{url}/v1/segments", json=body)
            if r.status_code != 201:
                raise RuntimeError(f"segment {body['key']}: {r.status_code} {r.text[:300]}")


class SegmentPoller(MarkerPoller):
    """Polls each acknowledged marker user until ``marked`` is among its segments."""

    def ready(self, response: httpx.Response) -> bool:
        return response.status_code == 200 and "marked" in response.json().get("segments", [])


def live(bodies: list[bytes]) -> list[bytes]:
    """Stamp the batches as sent now (``timestamp`` = ``sentAt``): the collector's clock-skew
    correction then places every event at its arrival time, as for live traffic."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [body.replace(b'"2026-11-01T10:00:00.000Z"', f'"{at}"'.encode()) for body in bodies]


def one_run(run: int, segments: list[dict[str, Any]] | None) -> tuple[float, list[float]]:
    bodies, markers = make_batches(seed=100 + run)
    bodies = live(bodies)
    events = BATCHES * BATCH_SIZE
    with tempfile.TemporaryDirectory() as data:
        srv, port = start_personify(data)
        url = f"http://127.0.0.1:{port}"
        try:
            poller = SegmentPoller(url) if segments else None
            if segments:
                define(url, segments)
                time.sleep(1.5)  # the worker picks definitions up within a second
            if poller:
                poller.thread.start()
            started = time.perf_counter()
            send_all(url, bodies, markers, poller.acked if poller else None)
            wait_caught_up(url)
            elapsed = time.perf_counter() - started
            if poller:
                poller.done.set()
                poller.thread.join(timeout=120)
        finally:
            stop(srv)
    return events / elapsed, poller.lags if poller else []


def rebuild_runs() -> tuple[list[float], int]:
    from personify.clock import FixedClock
    from personify.config import Settings
    from personify.platform import build
    from personify.segments.service import Segments

    source, spec = demo_data(1_000_000)
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = copy_of(source, Path(tmp))
        settings = Settings(data_dir=data, write_keys="demo")
        with build(settings, FixedClock(spec.end)) as p:
            events = p.stores.events.count()
            for body in fifty_segments():
                stored = {k: v for k, v in body.items() if k != "key"}
                p.stores.definitions.put("segment", body["key"], stored, actor="bench")
            service = Segments(p)
            for _ in range(3):
                t0 = time.perf_counter()
                service.rebuild()
                times.append(time.perf_counter() - t0)
                print(f"rebuild of {events:,} events: {times[-1]:.1f} s")
    return times, events


def main() -> None:
    with_segments, baseline, lags = [], [], []
    for run in range(RUNS):
        rate, _ = one_run(run, None)
        baseline.append(rate)
        rate, run_lags = one_run(run, fifty_segments())
        with_segments.append(rate)
        lags += run_lags
        print(
            f"run {run + 1}: {rate:,.0f} ev/s with 50 segments (no segments "
            f"{baseline[-1]:,.0f}), membership lag p99 {percentile(run_lags, 99):.2f}s"
        )
    rebuilds, events = rebuild_runs()
    figures = {
        "events_per_s_with_50_segments": round(median(with_segments)),
        "membership_lag_p99_s": round(percentile(lags, 99), 3),
        "rebuild_1m_events_s": round(median(rebuilds), 2),
    }
    extra = {
        "baseline": {"events_per_s_no_segments": round(median(baseline))},
        "runs": {
            "events_per_s_with_50_segments": [round(r) for r in with_segments],
            "events_per_s_no_segments": [round(r) for r in baseline],
            "markers": len(lags),
            "rebuild_s": [round(t, 2) for t in rebuilds],
            "rebuild_events": events,
        },
    }
    path = write_results("segments", __doc__ or "", figures, extra)
    print_table(
        "segments",
        [
            ("events/s with 50 segments", f"{figures['events_per_s_with_50_segments']:,}"),
            (
                "events/s with no segment (baseline)",
                f"{extra['baseline']['events_per_s_no_segments']:,}",
            ),
            ("membership lag p99", f"{figures['membership_lag_p99_s']} s"),
            (f"rebuild of {events:,} events", f"{figures['rebuild_1m_events_s']} s"),
            ("results", str(path)),
        ],
    )


if __name__ == "__main__":
    main()
