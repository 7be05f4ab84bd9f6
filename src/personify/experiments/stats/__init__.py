"""Experiment statistics, written from the formulas (no gbstats code), checked against gbstats.

* :mod:`.moments`: per-arm sufficient statistics (means, proportions, ratios);
* :mod:`.frequentist`: Welch t-test, two-proportion z-test, absolute and relative lift;
* :mod:`.sequential`: always-valid confidence sequences;
* :mod:`.bayesian`: chance to beat control, expected loss;
* :mod:`.cuped`: variance reduction with pre-exposure data;
* :mod:`.srm`: sample-ratio mismatch; :mod:`.multiple`: Holm and Benjamini-Hochberg;
* :mod:`.power`: sample size, power and minimum detectable effect.
"""

from personify.experiments.stats.bayesian import BayesianResult, NormalPrior, bayesian_test
from personify.experiments.stats.cuped import CupedArms, cuped
from personify.experiments.stats.frequentist import TestResult, two_proportion_ztest, welch_ttest
from personify.experiments.stats.moments import (
    Moments,
    Proportion,
    RatioStatistic,
    SampleMean,
    Statistic,
)
from personify.experiments.stats.multiple import benjamini_hochberg, holm
from personify.experiments.stats.power import (
    minimum_detectable_effect,
    power_of,
    users_per_arm,
    users_per_arm_for_proportion,
)
from personify.experiments.stats.sequential import sequential_test
from personify.experiments.stats.srm import SrmResult, srm_check

__all__ = [
    "BayesianResult",
    "CupedArms",
    "Moments",
    "NormalPrior",
    "Proportion",
    "RatioStatistic",
    "SampleMean",
    "SrmResult",
    "Statistic",
    "TestResult",
    "bayesian_test",
    "benjamini_hochberg",
    "cuped",
    "holm",
    "minimum_detectable_effect",
    "power_of",
    "sequential_test",
    "srm_check",
    "two_proportion_ztest",
    "users_per_arm",
    "users_per_arm_for_proportion",
    "welch_ttest",
]
