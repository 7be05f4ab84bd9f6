"""Decisions: ``POST /v1/decide`` latency and peak rate, and in-process ``decide()`` (issue 4).

Protocol (printed into the results file):
* Data: a fresh embedded data dir (SQLite state, DuckDB events) with USERS profiles built
  through the Python API (identify with traits, 0 to 6 orders each), and a workspace with 21
  content items and ONE placement ``home_hero`` with 20 rules: 19 narrow rules on traits,
  computed traits, model scores and context that most people do not match (so a typical
  request evaluates all 20), then a catch-all rule; templates read traits and computed traits.
* Server: ``personify serve`` (embedded mode, API process + processing worker) on loopback.
  Each request asks for one placement for a random known user with a web context; the
  decision is logged to decisions.sqlite as in production. 500 warm-up requests first.
  Requests carry an API key with role ``decide`` (``Authorization: Bearer``), created in
  the data dir's key store before the server starts, as a site's server would send it
  (write keys only collect events).
* decide_p99_ms_at_300rps: 3 client threads, each on its own keep-alive connection, pace
  100 requests/s each on a fixed schedule for PACED_S seconds (300 requests/s in all);
  p99 of request latency (send to full response), all runs pooled.
* decide_peak_rps and bare_fastapi_peak_rps: CLIENT_PROCS client processes with
  CLIENT_THREADS keep-alive connections each send back-to-back for PEAK_S seconds; requests
  completed per second; median of RUNS runs. The bare baseline is a FastAPI endpoint that
  parses the same request and returns a constant decision of the same size
  (benchmarks/bare_decide_app.py), measured in the same run by the same client.
* inprocess_decisions_per_s: ``Decider.decide(user_id=..., placements=["home_hero"])`` in one
  thread of this process over the same data (identity lookup, profile read, rules,
  rendering, logging); decisions per second, median of RUNS runs of INPROCESS_N decisions.
  ``engine_only_decisions_per_s`` (diagnostic) times ``DecisionEngine.decide`` with the
  profile views read beforehand, to separate the engine from the profile read.
* The client runs on the same 2-core machine as the server, as in benchmarks/ingest.py.
* The server's per-key rate limit is lifted (one key sends all requests at peak rate).
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import random
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
USERS = int(os.environ.get("BENCH_DECIDE_USERS", "2000"))
PACED_S = float(os.environ.get("BENCH_PACED_S", "10"))
PEAK_S = float(os.environ.get("BENCH_PEAK_S", "8"))
INPROCESS_N = int(os.environ.get("BENCH_INPROCESS_N", "5000"))
CLIENT_PROCS = 2
CLIENT_THREADS = 4


def workspace() -> dict[str, Any]:
    """21 content items and one placement with 20 rules (19 narrow, one catch-all)."""
    content = {
        f"offer_{i}": {
            "type": "banner",
            "attributes": {"slug": f"c{i}"},
            "variants": {
                "web": {
                    "headline": "Hello {{ traits.first_name | default('there') }}, offer " + str(i),
                    "body": "{{ computed.orders }} orders so far",
                    "url": f"/offers/{i}",
                }
            },
            "caps": {"per_day": 1000},
        }
        for i in range(1, 22)
    }
    narrow = [
        {"traits.plan": "enterprise"},
        {"computed.orders": {"$gte": 50}},
        {"scores.churn": {"$gt": 0.95}},
        {"segments": {"$elemMatch": {"$eq": "vip_platinum"}}},
        {"context.page": "/checkout", "computed.orders": 0},
        {"context.cart_value": {"$gte": 500}},
        {"traits.first_name": {"$regex": "^Zz"}},
        {"$or": [{"traits.country": "IS"}, {"traits.country": "LI"}]},
        {"computed.revenue": {"$gte": 100000}},
        {"context.device": "tv"},
        {"computed.days_since_last_seen": {"$gt": 365}},
        {"traits.plan": {"$in": ["gold", "platinum"]}, "computed.orders": {"$lt": 0}},
        {"context.locale": "xx-XX"},
        {"scores.propensity": {"$gte": 0.99}},
        {"computed.lifecycle_stage": "churned"},
        {"$and": [{"computed.sessions": {"$gte": 1000}}, {"traits.plan": "free"}]},
        {"context.local_hour": {"$gt": 30}},
        {"traits.email": {"$exists": False}, "computed.orders": {"$gt": 10}},
        {"$not": {"computed.event_counts.identify": {"$gte": 0}}},
    ]
    rules = [
        {"id": f"r{i + 1}", "when": when, "show": f"offer_{i + 1}"} for i, when in enumerate(narrow)
    ]
    rules.append(
        {"id": "r20", "when": {"computed.event_counts.identify": {"$gte": 1}}, "show": "offer_20"}
    )
    placement = {
        "channel": "web",
        "candidates": sorted(content),
        "default": "offer_21",
    }
    return {"content": content, "placement": placement, "rules": rules}


def prepare(data_dir: Path) -> tuple[list[str], str]:
    """Profiles, definitions and a ``decide`` API key in a fresh data dir; returns the user
    ids and the ``Authorization`` header value that carries the key."""
    from personify.config import Settings
    from personify.definitions import open_sqlite
    from personify.platform import build

    rng = random.Random(4)
    settings = Settings(data_dir=data_dir, write_keys=WRITE_KEY, admin_key=ADMIN_KEY)
    users = [f"user-{i:05d}" for i in range(USERS)]
    with build(settings) as p:
        for uid in users:
            p.identify(
                user_id=uid,
                traits={
                    "first_name": rng.choice(["Ada", "Alan", "Grace"]),
                    "plan": "free",
                    "email": f"{uid}@example.com",
                },
            )
            for _ in range(rng.randrange(7)):
                p.track(user_id=uid, event="Order Completed", properties={"revenue": 30})
        p.drain()
        assert p.privacy is not None
        auth = f"Bearer {p.privacy.keys.create('decide', 'decide benchmark').token}"
    ws = workspace()
    store = open_sqlite(data_dir)
    for key, body in ws["content"].items():
        store.put("content", key, body, actor="bench")
    store.put("placement", "home_hero", ws["placement"], actor="bench")
    store.put("rule_set", "home_hero", {"rules": ws["rules"]}, actor="bench")
    store.close()
    return users, auth


def request_body(user: str) -> bytes:
    return orjson.dumps(
        {
            "userId": user,
            "context": {"channel": "web", "page": "/", "device": "mobile", "locale": "en-US"},
            "placements": ["home_hero"],
        }
    )


def _post(con: http.client.HTTPConnection, body: bytes, auth: str) -> bytes:
    con.request(
        "POST",
        "/v1/decide",
        body=body,
        headers={"Authorization": auth, "Content-Type": "application/json"},
    )
    response = con.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"decide failed: {response.status} {data[:200]!r}")
    return data


def paced(
    port: int, auth: str, users: list[str], rate: float, seconds: float, seed: int
) -> list[float]:
    """One connection sending ``rate`` requests/s on a fixed schedule; latencies (s)."""
    rng = random.Random(seed)
    bodies = [request_body(rng.choice(users)) for _ in range(int(rate * seconds))]
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    start = time.perf_counter()
    for i, body in enumerate(bodies):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        _post(con, body, auth)
        out.append(time.perf_counter() - t0)
    con.close()
    return out


def paced_latencies(port: int, auth: str, users: list[str], run: int) -> list[float]:
    results: list[list[float]] = [[] for _ in range(3)]

    def one(i: int) -> None:
        results[i] = paced(port, auth, users, 100.0, PACED_S, seed=run * 10 + i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for r in results for x in r]


def _closed_loop(args: tuple[int, str, list[bytes], float]) -> int:
    port, auth, bodies, seconds = args
    done = [0] * CLIENT_THREADS
    deadline = time.perf_counter() + seconds

    def loop(i: int) -> None:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.perf_counter() < deadline:
            _post(con, bodies[(i + n * CLIENT_THREADS) % len(bodies)], auth)
            n += 1
        done[i] = n
        con.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def peak_rps(port: int, auth: str, users: list[str], seed: int) -> float:
    rng = random.Random(seed)
    bodies = [request_body(rng.choice(users)) for _ in range(2000)]
    ctx = mp.get_context("spawn")
    with ctx.Pool(CLIENT_PROCS) as pool:
        t0 = time.perf_counter()
        counts = pool.map(_closed_loop, [(port, auth, bodies, PEAK_S)] * CLIENT_PROCS)
        elapsed = time.perf_counter() - t0
    return sum(counts) / elapsed


def warm_up(port: int, auth: str, users: Sequence[str], n: int = 500) -> None:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(n):
        _post(con, request_body(users[i % len(users)]), auth)
    con.close()


def bare_peak(auth: str, users: list[str], run: int) -> float:
    srv, port = start_bare_app("bare_decide_app")  # it ignores the key
    try:
        warm_up(port, auth, users)
        return peak_rps(port, auth, users, seed=run)
    finally:
        stop(srv)


# the peak-rate test sends as fast as it can with one key: lift the per-key limit
UNLIMITED = {
    "PERSONIFY_PRIVACY__RATE_PER_SECOND": "1000000",
    "PERSONIFY_PRIVACY__RATE_BURST": "1000000",
}


def server_runs(data_dir: Path, auth: str, users: list[str]) -> dict[str, list[float]]:
    latencies: list[float] = []
    peaks, bare = [], []
    for run in range(RUNS):
        bare.append(bare_peak(auth, users, run))
        srv, port = start_personify(data_dir, UNLIMITED)
        try:
            warm_up(port, auth, users)
            run_latencies = paced_latencies(port, auth, users, run)
            latencies.extend(run_latencies)
            peaks.append(peak_rps(port, auth, users, seed=run))
        finally:
            stop(srv)
        print(
            f"run {run + 1}: p99 {percentile(run_latencies, 99) * 1000:.2f} ms at 300/s, "
            f"peak {peaks[-1]:,.0f}/s (bare {bare[-1]:,.0f}/s)"
        )
    return {"latencies": latencies, "peaks": peaks, "bare": bare}


def inprocess_runs(data_dir: Path, users: list[str]) -> dict[str, list[float]]:
    from personify.config import Settings
    from personify.decide.service import Decider
    from personify.platform import build

    settings = Settings(data_dir=data_dir, write_keys=WRITE_KEY, admin_key=ADMIN_KEY)
    rates, engine_rates = [], []
    with build(settings) as p:
        decider = Decider(p)
        try:
            rng = random.Random(9)
            context = {"channel": "web", "page": "/", "device": "mobile", "locale": "en-US"}
            for run in range(RUNS):
                picks = [rng.choice(users) for _ in range(INPROCESS_N)]
                t0 = time.perf_counter()
                for uid in picks:
                    decider.decide(user_id=uid, placements=["home_hero"], context=context)
                rates.append(INPROCESS_N / (time.perf_counter() - t0))
                views = [p.profile(p.lookup("user_id", uid)) for uid in picks]
                t0 = time.perf_counter()
                for v in views:
                    decider.engine.decide(v, context, ["home_hero"])
                engine_rates.append(INPROCESS_N / (time.perf_counter() - t0))
                print(
                    f"in-process run {run + 1}: {rates[-1]:,.0f}/s "
                    f"(engine only {engine_rates[-1]:,.0f}/s)"
                )
        finally:
            decider.close()
    return {"rates": rates, "engine": engine_rates}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        users, auth = prepare(data_dir)
        inproc = inprocess_runs(data_dir, users)
        served = server_runs(data_dir, auth, users)
    figures = {
        "decide_p99_ms_at_300rps": round(percentile(served["latencies"], 99) * 1000, 2),
        "decide_peak_rps": round(median(served["peaks"])),
        "bare_fastapi_peak_rps": round(median(served["bare"])),
        "inprocess_decisions_per_s": round(median(inproc["rates"])),
    }
    extra = {
        "runs": {
            "decide_peak_rps": [round(r) for r in served["peaks"]],
            "bare_fastapi_peak_rps": [round(r) for r in served["bare"]],
            "inprocess_decisions_per_s": [round(r) for r in inproc["rates"]],
        },
        "ratio_to_bare": round(figures["decide_peak_rps"] / figures["bare_fastapi_peak_rps"], 3),
        "decide_median_ms_at_300rps": round(median(served["latencies"]) * 1000, 2),
        "paced_requests": len(served["latencies"]),
        "engine_only_decisions_per_s": round(median(inproc["engine"])),
        "users": USERS,
        "rules": 20,
    }
    path = write_results("decide", __doc__ or "", figures, extra)
    print_table(
        "decide",
        [(k, f"{v:,}") for k, v in {**figures, "ratio_to_bare": extra["ratio_to_bare"]}.items()],
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
