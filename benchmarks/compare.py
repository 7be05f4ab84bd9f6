"""Same-window comparison with an earlier version (``BENCH_BASE=<rev> make bench NAME=compare``).

Protocol (printed into the results file):
* Why: this shared VM's speed drifts by tens of percent within an hour, and not only in
  what ``machine.calibration_s`` sees, so figures from different sessions cannot tell
  whether a change helped. This benchmark measures both versions back to back instead.
* The base is ``BENCH_BASE`` (a git revision, default ``HEAD~1``): its ``src`` is extracted
  with ``git archive`` into a temporary directory and put first on the ``PYTHONPATH`` of the
  servers started for it; the other side is the working tree. The client code (this
  directory) is the working tree's for both.
* PAIRS times (``BENCH_PAIRS``, default 3), alternating base then head:
  - ingest: one run of ``ingest.ingest_runs`` (the ingest benchmark's protocol: rate from
    first send to last acknowledgment, CPU per message of each server process, then 2,000
    profile lookups paced at 200 per second: their median and p99 latency);
  - segments: one ``segments.one_run`` with its 50 segments (rate until profiles and
    memberships are current), when ``BENCH_SEGMENTS`` is not ``0``.
* Figures: the median of each side and ``head / base`` of the medians; every pair is kept.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import median, percentile, print_table, write_results

ROOT = Path(__file__).resolve().parent.parent


def extract(rev: str, into: Path) -> Path:
    """The ``src`` tree of ``rev``, written under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def on(src: Path | None) -> None:
    """Servers started from now on import personify from ``src`` (None: the working tree)."""
    if src is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = str(src)


def main() -> None:
    import ingest
    import segments

    base_rev = os.environ.get("BENCH_BASE", "HEAD~1")
    pairs = int(os.environ.get("BENCH_PAIRS", "3"))
    with_segments = os.environ.get("BENCH_SEGMENTS", "1") != "0"
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{base_rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise SystemExit(
            f"BENCH_BASE={base_rev!r} is not a commit of this repository; "
            "give a revision such as HEAD~1 or a commit id"
        )
    base_sha = found.stdout.strip()
    runs: dict[str, dict[str, list[Any]]] = {
        side: {"ingest": [], "ingest_cpu": [], "lookup_ms": [], "segments": []}
        for side in ("base", "head")
    }
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"base": extract(base_sha, Path(tmp)), "head": None}
        try:
            for pair in range(pairs):
                for side, src in sides.items():
                    on(src)
                    got = ingest.ingest_runs(1, baseline=False)
                    runs[side]["ingest"].append(round(got["rates"][0]))
                    runs[side]["ingest_cpu"].append(
                        {
                            "api": round(got["api_cpu"][0], 1),
                            "worker": round(got["worker_cpu"][0], 1),
                            "writers": round(got["writer_cpu"][0], 1),
                        }
                    )
                    runs[side]["lookup_ms"].append(
                        {
                            "median": round(percentile(got["lookups"], 50) * 1e3, 2),
                            "p99": round(percentile(got["lookups"], 99) * 1e3, 2),
                        }
                    )
                    if with_segments:
                        rate, _ = segments.one_run(pair, segments.fifty_segments())
                        runs[side]["segments"].append(round(rate))
                    print(f"pair {pair + 1} {side}: {runs[side]}")
        finally:
            on(None)
    figures: dict[str, float] = {}
    for key in ("ingest", "segments"):
        if not runs["head"][key]:
            continue
        base, head = median(runs["base"][key]), median(runs["head"][key])
        figures[f"{key}_events_per_s_base"] = round(base)
        figures[f"{key}_events_per_s_head"] = round(head)
        figures[f"{key}_head_over_base"] = round(head / base, 3)
    for stat in ("median", "p99"):
        for side in ("base", "head"):
            values = [x[stat] for x in runs[side]["lookup_ms"]]
            figures[f"lookup_{stat}_ms_{side}"] = round(median(values), 2)
    extra = {"base": {"rev": base_rev, "sha": base_sha}, "pairs": runs}
    path = write_results("compare", __doc__ or "", figures, extra)
    print_table(
        "compare",
        [(k, f"{v:,}") for k, v in figures.items()] + [("results", str(path))],
    )
