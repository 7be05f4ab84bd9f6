"""Bandit policies: Thompson sampling, epsilon-greedy, UCB1 and LinUCB, plus a regret simulator.

One base class (:mod:`.base`), one small module per family. Every policy returns the
propensity of its choice, so logs it produces support off-policy evaluation.
"""

from personify.experiments.bandits.base import BanditPolicy, Choice
from personify.experiments.bandits.classic import UCB1, EpsilonGreedy
from personify.experiments.bandits.linucb import LinUCB
from personify.experiments.bandits.simulate import DEFAULT_RATES, RegretResult, simulate_regret
from personify.experiments.bandits.thompson import BetaThompson, GaussianThompson

__all__ = [
    "DEFAULT_RATES",
    "UCB1",
    "BanditPolicy",
    "BetaThompson",
    "Choice",
    "EpsilonGreedy",
    "GaussianThompson",
    "LinUCB",
    "RegretResult",
    "simulate_regret",
]
