"""The arithmetic of each bandit rule on arrays ``(..., arms)``.

The policies call these on one row of state; the regret simulation calls them on a batch of
independent runs (one row per seed) at once, so the benchmark measures the same rules the
policies serve, at numpy speed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def beta_thompson_draw(
    successes: FloatArray, failures: FloatArray, rng: np.random.Generator, prior: float = 1.0
) -> IntArray:
    """One Thompson step for Bernoulli rewards: the arm whose Beta posterior draw is highest."""
    draws = rng.beta(successes + prior, failures + prior)
    return np.asarray(draws.argmax(axis=-1), dtype=np.int64)


def beta_thompson_probabilities(
    successes: FloatArray,
    failures: FloatArray,
    rng: np.random.Generator,
    draws: int,
    prior: float = 1.0,
) -> FloatArray:
    """P(arm is best) under the Beta posteriors, estimated from ``draws`` joint samples."""
    samples = rng.beta(successes + prior, failures + prior, size=(draws, successes.shape[-1]))
    counts = np.bincount(samples.argmax(axis=1), minlength=successes.shape[-1])
    return np.asarray(counts / draws, dtype=np.float64)


def greedy_with_epsilon(
    means: FloatArray, pulls: FloatArray, epsilon: float, rng: np.random.Generator
) -> IntArray:
    """Epsilon-greedy: untried arms first, else the best mean; uniform with probability epsilon."""
    arms = means.shape[-1]
    untried = pulls == 0
    scores = np.where(untried, np.inf, means)
    # random tie-breaking among the best: add a tiny jitter below any real gap
    jitter = rng.random(means.shape) * 1e-12
    best = (scores + jitter).argmax(axis=-1)
    explore = rng.random(means.shape[:-1]) < epsilon
    uniform = rng.integers(0, arms, size=means.shape[:-1])
    return np.asarray(np.where(explore, uniform, best), dtype=np.int64)


def ucb1_scores(
    means: FloatArray, pulls: FloatArray, total: FloatArray | float, c: float = 2.0
) -> FloatArray:
    """UCB1 indices ``mean + sqrt(c ln t / n)``; untried arms score +inf."""
    log_t = np.log(np.maximum(np.asarray(total, dtype=float), 1.0))
    if log_t.ndim:
        log_t = log_t[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = np.sqrt(c * log_t / pulls)
    return np.asarray(np.where(pulls == 0, np.inf, means + bonus), dtype=np.float64)
