"""The statistics match GrowthBook's ``gbstats`` reference values to the stated decimals.

Cases from ``gbstats_reference_cases.json`` (hard-coded expectations of gbstats' own tests,
MIT) in the shared ``conformance`` folder. Each case gives per-arm sufficient statistics
(``a`` control, ``b`` treatment) and the expected estimate, interval, standard error,
p-value, chance to win or risk; personify's own implementation must reproduce every value.

One value is deliberately not compared, listed in :data:`NOT_COMPARED` with the reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from personify.config import Settings
from personify.experiments.stats import (
    NormalPrior,
    Proportion,
    SampleMean,
    Statistic,
    bayesian_test,
    sequential_test,
    srm_check,
    welch_ttest,
)
from personify.experiments.stats.bayesian import expected_losses

pytestmark = [pytest.mark.datasets]

CASES_FILE = "gbstats_reference_cases.json"
NOT_COMPARED = {
    # gbstats' one-sided sequential p-value (0.4999) is marked "not re-derived" in the
    # reference itself; ours is the always-valid p-value of the same one-sided sequence
    # (the alpha at which its bound touches zero), a different, documented quantity.
    ("sequential_one_sided_greater_rel_N5000", "p_value"),
}


def _load() -> dict[str, Any] | None:
    datasets = Settings().datasets_dir
    if datasets is None:
        return None
    path = datasets.resolve().parent / "conformance" / CASES_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _ids() -> list[Any]:
    data = _load()
    if data is None:
        return [pytest.param(None, id="gbstats-cases-missing")]
    return [pytest.param(case["id"], id=case["id"]) for case in data["cases"]]


@pytest.fixture(scope="module")
def reference(datasets_dir: Path) -> dict[str, Any]:
    data = _load()
    if data is None:
        if Settings().require_datasets:
            pytest.fail("PERSONIFY_REQUIRE_DATASETS is set but the gbstats cases are missing")
        pytest.skip(f"gbstats reference cases not available (conformance/{CASES_FILE})")
    return data


def _arm(raw: dict[str, Any]) -> Statistic:
    if raw["type"] == "proportion":
        return Proportion(raw["sum"], raw["n"])
    return SampleMean(raw["sum"], raw["sum_squares"], raw["n"])


def _number(value: Any) -> float:
    return (
        {"inf": math.inf, "-inf": -math.inf}.get(value, value) if isinstance(value, str) else value
    )


def _close(got: float, expected: Any, decimals: int) -> bool:
    want = _number(expected)
    if math.isinf(want):
        return got == want
    return abs(got - want) <= 0.5 * 10**-decimals + 1e-12


def _computed(case: dict[str, Any]) -> dict[str, Any]:
    method = case["method"]
    if method.startswith("pearson_chi_square"):
        return {"p_value": srm_check(case["users"], case["weights"]).p_value}
    if method.startswith("EffectBayesianABTest.get_risk"):
        return {"risk": list(expected_losses(case["mu"], case["sigma"]))}
    a, b, kind = _arm(case["a"]), _arm(case["b"]), case["difference"]
    if method.startswith("gaussian_effect_posterior"):
        prior = NormalPrior(**case["prior"]) if "prior" in case else None
        result = bayesian_test(a, b, kind=kind, prior=prior)
        return {
            "expected": result.expected,
            "ci": list(result.ci),
            "uplift_sd": result.uplift_sd,
            "chance_to_win": result.chance_to_win,
            "risk": list(result.risk),
        }
    name = f"{case['id']} {method}"  # the sequential one-sided case names its side in the id
    alternative = "greater" if "greater" in name else "less" if "lesser" in name else "two-sided"
    if method.startswith("sequential"):
        test = sequential_test(
            a, b, kind=kind, alternative=alternative, tuning=case["sequential_tuning_parameter"]
        )
    else:
        test = welch_ttest(a, b, kind=kind, alternative=alternative)
    return {"estimate": test.estimate, "ci": list(test.ci), "se": test.se, "p_value": test.p_value}


def test_the_reference_has_every_case(reference: dict[str, Any]) -> None:
    assert len(reference["cases"]) == 14
    assert reference["decimals"] == 5


@pytest.mark.parametrize("case_id", _ids())
def test_case_matches_gbstats(reference: dict[str, Any], case_id: str) -> None:
    case = next(c for c in reference["cases"] if c["id"] == case_id)
    decimals = reference["decimals"]
    got = _computed(case)

    compared = 0
    for key, expected in case["expected"].items():
        if (case_id, key) in NOT_COMPARED:
            continue
        values = got[key] if isinstance(expected, list) else [got[key]]
        wanted = expected if isinstance(expected, list) else [expected]
        assert len(values) == len(wanted), key
        for value, want in zip(values, wanted, strict=True):
            assert _close(value, want, decimals), f"{case_id}.{key}: got {value}, gbstats {want}"
        compared += 1
    assert compared >= 1
