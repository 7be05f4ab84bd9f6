"""The Open Bandit Dataset (ZOZOTOWN) check: evaluate the logged BTS policy on the random log.

The dataset holds two logs of the same fashion-site slots, one collected by a uniform random
policy and one by Bernoulli Thompson sampling (BTS). Because the BTS policy was actually run,
its on-policy click rate is known, so estimating it *off-policy* from the random log is a
real test of the estimators (Saito et al., 2021, "Open Bandit Dataset and Pipeline").

The BTS policy at logging time was a Beta-Bernoulli Thompson sampler whose per-item Beta
parameters are published with the Open Bandit Pipeline (:data:`BTS_PRIOR_ALPHA`,
:data:`BTS_PRIOR_BETA`, campaign "all"; numbers only). Its action distribution is the
frequency with which each item lands at each of the three positions when the items are
ranked by one joint Beta draw, over ``simulations`` draws from ``numpy.random.default_rng``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from personify.errors import InvalidInput, NotFound, Problem
from personify.experiments.ope.estimators import (
    Estimate,
    FloatArray,
    doubly_robust,
    ipw,
    snipw,
)

# Beta parameters of ZOZOTOWN's production BTS policy, "all" campaign, items 0..79, as
# published in the Open Bandit Pipeline (Apache-2.0). These are facts about the logging
# policy, needed to know what it would have done; they are not code.
BTS_PRIOR_ALPHA: tuple[float, ...] = (
    47, 8, 62, 142, 3, 14, 7, 857, 12, 15, 6, 100, 48, 23, 71, 61, 13, 16, 518, 30,
    7, 4, 23, 8, 10, 11, 11, 18, 121, 11, 11, 10, 14, 9, 204, 58, 3, 19, 42, 1013,
    2, 328, 15, 31, 14, 138, 45, 55, 23, 38, 10, 401, 52, 6, 3, 6, 5, 32, 35, 133,
    52, 820, 43, 195, 8, 42, 40, 4, 32, 30, 9, 22, 6, 23, 5, 54, 8, 22, 65, 246,
)  # fmt: skip
BTS_PRIOR_BETA: tuple[float, ...] = (
    12198, 3566, 15993, 35522, 2367, 4609, 3171, 181745, 4372, 4951, 3100, 24665, 13210,
    7061, 18061, 17449, 5644, 6787, 111326, 8776, 3334, 2271, 7389, 2659, 3665, 4724, 3561,
    5085, 27407, 4601, 4756, 4120, 4736, 3788, 45292, 14719, 2189, 5589, 11995, 222255,
    2308, 70034, 4801, 8274, 5421, 31912, 12213, 13576, 6230, 10382, 4141, 85731, 12811,
    2707, 2250, 2668, 2886, 9581, 9465, 28336, 12062, 162793, 12107, 41240, 3162, 11604,
    10818, 2923, 8897, 8654, 4000, 6580, 3174, 6766, 2602, 14506, 3968, 7523, 16532, 51964,
)  # fmt: skip
IntArray = npt.NDArray[np.int64]
N_ITEMS = 80
N_POSITIONS = 3
COLUMNS = ["item_id", "position", "click", "propensity_score"]


@dataclass(frozen=True)
class BanditLog:
    """A logged slate log: item shown, its position (0-based), click, logging propensity."""

    items: IntArray
    positions: IntArray
    clicks: FloatArray
    propensities: FloatArray

    @property
    def ctr(self) -> float:
        return float(self.clicks.mean())


def load_log(folder: Path, behaviour: str = "random", campaign: str = "all") -> BanditLog:
    """Read ``<folder>/<behaviour>/<campaign>.csv`` of the Open Bandit Dataset."""
    path = folder / behaviour / f"{campaign}.csv"
    if not path.is_file():
        raise NotFound(
            f"no Open Bandit log at {path}",
            hint="pass the open_bandit folder that holds random/all.csv and bts/all.csv",
        )
    frame = pd.read_csv(path, usecols=COLUMNS)
    positions = frame["position"].to_numpy()
    # positions are 1-based in the files; any dense labelling is mapped to 0..L-1
    labels = np.unique(positions)
    return BanditLog(
        items=frame["item_id"].to_numpy(dtype=np.int64),
        positions=np.searchsorted(labels, positions).astype(np.int64),
        clicks=frame["click"].to_numpy(dtype=np.float64),
        propensities=frame["propensity_score"].to_numpy(dtype=np.float64),
    )


def bts_action_distribution(
    alpha: FloatArray | None = None,
    beta: FloatArray | None = None,
    *,
    positions: int = N_POSITIONS,
    simulations: int = 100_000,
    seed: int = 12345,
    chunk: int = 10_000,
) -> FloatArray:
    """P(item at position) for a Beta Thompson ranker: shape ``(items, positions)``."""
    a = np.asarray(BTS_PRIOR_ALPHA if alpha is None else alpha, dtype=np.float64)
    b = np.asarray(BTS_PRIOR_BETA if beta is None else beta, dtype=np.float64)
    if a.shape != b.shape or a.size < positions or simulations < 1:
        raise InvalidInput(
            "invalid Thompson ranker",
            hint="alpha and beta need one value per item, at least as many items as positions",
            problems=[Problem("alpha", "shape mismatch or too few items")],
        )
    rng = np.random.default_rng(seed)
    counts = np.zeros((a.size, positions))
    done = 0
    while done < simulations:
        size = min(chunk, simulations - done)
        draws = rng.beta(a, b, size=(size, a.size))
        top = np.argsort(draws, axis=1)[:, ::-1][:, :positions]
        for position in range(positions):
            counts[:, position] += np.bincount(top[:, position], minlength=a.size)
        done += size
    return np.asarray(counts / simulations, dtype=np.float64)


def item_position_model(
    log: BanditLog, *, folds: int = 2, strength: float = 100.0, seed: int = 0
) -> FloatArray:
    """Cross-fitted reward model q(item, position) for every logged round: shape ``(n, items)``.

    A click rate per item, shrunk toward the rate of its position with ``strength`` pseudo
    impressions, fitted on the other folds (cross-fitting keeps the model's errors
    independent of the rounds it corrects, which DR's guarantee assumes).
    """
    n = log.clicks.size
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    out = np.zeros((n, N_ITEMS))
    for fold in range(folds):
        train = fold_of != fold
        items, pos, clicks = log.items[train], log.positions[train], log.clicks[train]
        shown = np.zeros((N_ITEMS, N_POSITIONS))
        clicked = np.zeros((N_ITEMS, N_POSITIONS))
        np.add.at(shown, (items, pos), 1)
        np.add.at(clicked, (items, pos), clicks)
        position_rate = clicked.sum(axis=0) / np.maximum(shown.sum(axis=0), 1)
        rates = (clicked + strength * position_rate) / (shown + strength)
        test = ~train
        out[test] = rates[:, log.positions[test]].T
    return out


@dataclass(frozen=True)
class OpenBanditReport:
    """IPW, SNIPW and DR of BTS on the random log, next to BTS's own on-policy CTR."""

    ipw: Estimate
    snipw: Estimate
    dr: Estimate
    on_policy_ctr: float | None
    logging_ctr: float

    def relative_error(self, estimate: Estimate) -> float | None:
        if not self.on_policy_ctr:
            return None
        return abs(estimate.value - self.on_policy_ctr) / self.on_policy_ctr

    def as_dict(self) -> dict[str, object]:
        return {
            "estimates": [
                {**e.as_dict(), "relative_error": self.relative_error(e)}
                for e in (self.ipw, self.snipw, self.dr)
            ],
            "on_policy_ctr": self.on_policy_ctr,
            "logging_ctr": self.logging_ctr,
        }


def evaluate_bts_on_random(
    folder: Path, *, simulations: int = 100_000, seed: int = 12345
) -> OpenBanditReport:
    """Estimate the BTS policy's click rate from the uniform-random log (see module doc)."""
    log = load_log(folder, "random")
    dist = bts_action_distribution(simulations=simulations, seed=seed)
    target = dist[log.items, log.positions]
    q = item_position_model(log)
    rows = np.arange(log.items.size)
    q_logged = q[rows, log.items]
    q_value = (q * dist[:, log.positions].T).sum(axis=1)
    on_policy = None
    if (folder / "bts" / "all.csv").is_file():
        on_policy = load_log(folder, "bts").ctr
    return OpenBanditReport(
        ipw=ipw(log.clicks, log.propensities, target),
        snipw=snipw(log.clicks, log.propensities, target),
        dr=doubly_robust(log.clicks, log.propensities, target, q_logged, q_value),
        on_policy_ctr=on_policy,
        logging_ctr=log.ctr,
    )
