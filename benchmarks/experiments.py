"""Experiments benchmark: OPE on the Open Bandit sample, bandit regret, assignment speed.

Figures (``benchmarks/results/experiments.json``):

* ``obd_ipw_bts``, ``obd_snipw_bts``, ``obd_dr_bts``: estimates of the logged Bernoulli-TS
  policy's click rate from the uniform-random log of the Open Bandit Dataset sample
  (published BTS Beta priors, ``default_rng(12345)``, 100,000 simulated rankings, top 3).
  The published IPW reference is 0.004553; BTS's own on-policy CTR is 0.0042.
* ``regret_ts_over_eps``: Thompson sampling's mean cumulative regret divided by
  epsilon-greedy's (epsilon 0.1); the target is <= 0.5.
* ``regret_random_over_ts``: uniform random's regret divided by Thompson sampling's; the
  target is >= 5. Both over 100,000 decisions and 20 independent runs on the arm rates
  0.10, 0.07, 0.05, 0.03, 0.02 (seed 0).
* ``assignments_per_s``: GrowthBook-compatible assignments (hash v2, 3 variations, no
  targeting) per second, in process on one core; median of 5 runs of 200,000 visitors.

``PERSONIFY_DATASETS_DIR`` must point at the shared datasets (``make bench`` sets it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import common

from personify.experiments.assignment import AssignmentContext, ExperimentSpec, run
from personify.experiments.bandits.simulate import DEFAULT_RATES, simulate_regret
from personify.experiments.ope.open_bandit import evaluate_bts_on_random

HORIZON = int(os.environ.get("BENCH_EXPERIMENTS_HORIZON", "100000"))
REPLICATIONS = 20
VISITORS = 200_000
RUNS = 5


def assignments_per_second() -> float:
    spec = ExperimentSpec.from_growthbook(
        {"key": "home-hero", "variations": ["a", "b", "c"], "hashVersion": 2}
    )
    contexts = [AssignmentContext(attributes={"id": f"user_{i:07d}"}) for i in range(VISITORS)]
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for ctx in contexts:
            run(spec, ctx)
        rates.append(VISITORS / (time.perf_counter() - start))
    return common.median(rates)


def main() -> None:
    datasets = Path(os.environ.get("PERSONIFY_DATASETS_DIR", "../shared/datasets"))
    report = evaluate_bts_on_random(datasets / "open_bandit")
    regrets = {
        policy: simulate_regret(policy, horizon=HORIZON, replications=REPLICATIONS, seed=0).mean
        for policy in ("thompson", "epsilon_greedy", "ucb1", "random")
    }
    figures = {
        "obd_ipw_bts": round(report.ipw.value, 7),
        "obd_snipw_bts": round(report.snipw.value, 7),
        "obd_dr_bts": round(report.dr.value, 7),
        "regret_ts_over_eps": round(regrets["thompson"] / regrets["epsilon_greedy"], 4),
        "regret_random_over_ts": round(regrets["random"] / regrets["thompson"], 2),
        "assignments_per_s": round(assignments_per_second()),
    }
    protocol = (
        "OPE: Open Bandit sample, BTS evaluated on random/all.csv (published priors, "
        "default_rng(12345), 100,000 simulated rankings, top 3; DR with a cross-fitted "
        "item x position click model). Regret: pseudo-regret over "
        f"{HORIZON:,} decisions, {REPLICATIONS} independent runs, arm rates "
        f"{', '.join(str(r) for r in DEFAULT_RATES)}, seed 0. Assignment: hash v2, 3 "
        f"variations, {VISITORS:,} visitors, median of {RUNS} runs, one core, in process."
    )
    extra = {
        "reference": {"obd_ipw_bts_published": 0.004553, "bts_on_policy_ctr": report.on_policy_ctr},
        "mean_cumulative_regret": {k: round(v, 2) for k, v in regrets.items()},
        "intervals_95": {
            e.estimator: [round(x, 7) for x in e.ci] for e in (report.ipw, report.snipw, report.dr)
        },
    }
    common.print_table("experiments", [(k, f"{v:,}") for k, v in figures.items()])
    path = common.write_results("experiments", protocol, figures, extra)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
