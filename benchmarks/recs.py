"""Product recommendations (issue 8): offline quality, training time, serving latency.

Protocol (printed into the results file):
* Quality: ``personify recs evaluate`` on UCI Online Retail, the reference protocol (its full
  text is in ``evaluation_protocol``): drop lines without CustomerID, cancellations,
  Quantity <= 0, UnitPrice <= 0; binary customer x StockCode; train before 2011-09-01, test
  from 2011-09-01; customers with purchases in both periods; full ranking over every
  training item; top 10. ndcg10_* are NDCG@10 with repeat purchases allowed, every model
  from the same run (deterministic: fixed seeds, ties broken by item index). The hybrid's
  weights are tuned on the last 92 days of the training period only. The variant with
  the customer's training items excluded is in ``table``.
* train_hybrid_s: wall time of tuning + fitting the hybrid on the whole file (all lines that
  pass the cleaning above, 2010-12-01 to 2011-12-09), median of RUNS runs, in process.
* recs_p99_ms_at_200rps: a fresh ``personify serve`` (embedded mode) serving the model
  trained on the whole file from its registry. 600 known customers are identified and 300
  anonymous visitors send three Product Viewed events each over HTTP first. Then
  REQUESTS ``GET /v1/recommendations?k=10`` are sent at 200 requests/s in total (4
  client threads, each paced at 50/s on its own keep-alive connection, open loop), a
  third each for known customers (``user_id``), session visitors (``anonymous_id``, fold-in
  of their views) and new visitors (no identity). p99 of request latency as seen by the
  client (send to full response), same machine. The server runs with the default
  per-key rate limit (1,000 requests/s). Each request reads the profile; the
  timeline query for session events runs when the profile changed since its last request
  (the service caches it under the profile's event count), so repeated requests of a
  visitor with no new events, as here, skip it. Diagnostic: CPU milliseconds the API
  process used per request over the run (``serving.api_process_cpu_ms_per_request``),
  from /proc; it does not depend on how busy the rest of the machine is.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
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
    start_personify,
    stop,
    write_results,
)
from ingest import cpu_seconds

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
REQUESTS = int(os.environ.get("BENCH_RECS_REQUESTS", "6000"))
RATE = 200.0
THREADS = 4
REFERENCE = {
    "ndcg10_buy_again_popular": 0.396,
    "ndcg10_ease": 0.308,
    "ndcg10_item_knn": 0.247,
    "ndcg10_popular": 0.121,
    "ndcg10_ease_new_items": 0.125,
}


def quality(path: Path) -> dict[str, Any]:
    from personify.recs.evaluation import run_reference

    report = run_reference(path, variants=("repeat", "new"))
    figures = {
        "ndcg10_hybrid": report.ndcg("hybrid"),
        "ndcg10_buy_again_popular": report.ndcg("buy_again_popular"),
        "ndcg10_popular": report.ndcg("popular"),
        "ndcg10_ease": report.ndcg("ease"),
        "ndcg10_als": report.ndcg("als"),
    }
    return {"figures": {k: round(v, 4) for k, v in figures.items()}, "report": report}


def train_times(path: Path) -> tuple[list[float], Any, Any]:
    from personify.recs import publish

    times, data, trained = [], None, None
    for _ in range(RUNS):
        data = publish.from_online_retail(path)
        started = time.perf_counter()
        trained = publish.train(data)
        times.append(time.perf_counter() - started)
    return times, data, trained


def seed_visitors(url: str, customers: list[str], items: list[str]) -> list[str]:
    """Identify known customers and give anonymous visitors a three-view session."""
    rng = random.Random(5)
    batch: list[dict[str, Any]] = [
        {"type": "identify", "userId": c, "messageId": f"bench-id-{c}"} for c in customers
    ]
    visitors = [f"bench-visitor-{i}" for i in range(300)]
    for v in visitors:
        for j, item in enumerate(rng.sample(items, 3)):
            batch.append(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": v,
                    "messageId": f"{v}-{j}",
                    "properties": {"product_id": item},
                }
            )
    with httpx.Client(auth=(WRITE_KEY, ""), timeout=60) as client:
        for start in range(0, len(batch), 500):
            body = orjson.dumps({"batch": batch[start : start + 500]})
            resp = client.post(
                f"{url}/v1/batch", content=body, headers={"Content-Type": "application/json"}
            )
            resp.raise_for_status()
    while httpx.get(f"{url}/health").json()["lag"]:
        time.sleep(0.05)
    return visitors


def latencies(url: str, customers: list[str], visitors: list[str]) -> tuple[list[float], float]:
    per_thread = REQUESTS // THREADS
    rate = RATE / THREADS
    out: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(headers=headers, timeout=30) as client:
            client.get(f"{url}/health")
            start = time.perf_counter() + rng.random() / rate
            for i in range(per_thread):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                kind = i % 3
                params = {"k": "10"}
                if kind == 0:
                    params["user_id"] = rng.choice(customers)
                elif kind == 1:
                    params["anonymous_id"] = rng.choice(visitors)
                t0 = time.perf_counter()
                resp = client.get(f"{url}/v1/recommendations", params=params)
                mine.append(time.perf_counter() - t0)
                if resp.status_code != 200:
                    errors.append(f"{resp.status_code} {resp.text[:200]}")
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    achieved = len(out) / (time.perf_counter() - began)
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {errors[0]}")
    return out, achieved


def serve_latency(data: Any, trained: Any) -> dict[str, Any]:
    from personify.models.registry import ModelRegistry
    from personify.recs import publish

    with tempfile.TemporaryDirectory() as folder:
        publish.register(ModelRegistry(Path(folder) / "models"), data, trained)
        model_data = trained.model.data_
        rng = random.Random(3)
        customers = rng.sample(model_data.users.tolist(), min(600, model_data.n_users))
        items = model_data.items.tolist()
        srv, port = start_personify(folder)
        url = f"http://127.0.0.1:{port}"
        try:
            visitors = seed_visitors(url, customers, items)
            warm = httpx.get(  # the first request loads the model from the registry
                f"{url}/v1/recommendations",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=120,
            )
            warm.raise_for_status()
            cpu0 = cpu_seconds(srv.pid)
            times, achieved = latencies(url, customers, visitors)
            api_cpu_ms = (cpu_seconds(srv.pid) - cpu0) / len(times) * 1000
        finally:
            stop(srv)
    return {"latencies": times, "achieved_rps": achieved, "api_cpu_ms": api_cpu_ms}


def main() -> None:
    from personify.config import Settings

    datasets = Settings().datasets_dir
    if datasets is None:
        raise SystemExit("set PERSONIFY_DATASETS_DIR to the shared datasets folder")
    path = datasets / "online_retail" / "online_retail.parquet"
    offline = quality(path)
    train_s, data, trained = train_times(path)
    serving = serve_latency(data, trained)
    figures = {
        **offline["figures"],
        "train_hybrid_s": round(median(train_s), 2),
        "recs_p99_ms_at_200rps": round(percentile(serving["latencies"], 99) * 1000, 2),
    }
    report = offline["report"]
    extra = {
        "reference_ndcg10": REFERENCE,
        "evaluation_protocol": report.protocol,
        "facts": report.facts,
        "hybrid_weights": report.hybrid_weights,
        "table": [r.as_dict() for r in report.rows],
        "runs": {"train_hybrid_s": [round(t, 2) for t in train_s]},
        "serving": {
            "requests": len(serving["latencies"]),
            "achieved_rps": round(serving["achieved_rps"], 1),
            "median_ms": round(statistics.median(serving["latencies"]) * 1000, 2),
            "api_process_cpu_ms_per_request": round(serving["api_cpu_ms"], 2),
            "served_model_weights": dict(trained.model.weights),
        },
    }
    out = write_results("recs", __doc__ or "", figures, extra)
    print_table("recs", [(k, f"{v:,}") for k, v in figures.items()])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
