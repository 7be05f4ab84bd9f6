"""``make bench [NAME=...]``: run one benchmark or all of them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

NAMES = ["ingest", "segments", "experiments", "models", "decide", "recs"]
# Run only when named: ``compare`` measures against an earlier revision (BENCH_BASE).
ON_REQUEST = ["compare"]

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    wanted = sys.argv[1:] or NAMES
    for name in wanted:
        if name not in NAMES + ON_REQUEST:
            known = ", ".join(NAMES + ON_REQUEST)
            raise SystemExit(f"unknown benchmark {name!r}; choose from {known}")
        importlib.import_module(name).main()
