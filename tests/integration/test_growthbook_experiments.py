"""GrowthBook's SDK conformance suite, the assignment sections: personify buckets like every SDK.

Sections ``hash``, ``getBucketRange``, ``chooseVariation``, ``inNamespace``,
``getEqualWeights`` and ``run`` of ``growthbook_cases.json`` (spec 0.8.0, MIT), in the shared
``conformance`` folder beside ``PERSONIFY_DATASETS_DIR``. Every case runs; none is skipped
(the two query-string cases are plain URL parsing, not browser behaviour).

GrowthBook's own tests round floating-point bucket ranges and weights (to 6 and 8 places),
because ``0.2 * 0.2`` is ``0.04000000000000001`` in any language; so do these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from personify.config import Settings
from personify.experiments.assignment import AssignmentContext, ExperimentSpec, run
from personify.experiments.hashing import (
    bucket_ranges,
    choose_variation,
    equal_weights,
    gb_hash,
    in_namespace,
)

pytestmark = [pytest.mark.datasets]

CASES_FILE = "growthbook_cases.json"
EXPECTED_COUNTS = {
    "hash": 15,
    "getBucketRange": 13,
    "chooseVariation": 13,
    "inNamespace": 16,
    "getEqualWeights": 6,
    "run": 73,
}


def _folder() -> Path | None:
    datasets = Settings().datasets_dir
    if datasets is None:
        return None
    folder = datasets.resolve().parent / "conformance"
    return folder if (folder / CASES_FILE).is_file() else None


def _section(name: str) -> list[Any]:
    folder = _folder()
    if folder is None:
        return []
    cases: list[Any] = json.loads((folder / CASES_FILE).read_text("utf-8"))[name]
    return cases


def _params(name: str) -> list[Any]:
    cases = _section(name)
    if not cases:
        return [pytest.param(None, id=f"{name}-cases-missing")]
    return [
        pytest.param(
            i, id=str(case[0]) if isinstance(case[0], str) and name == "run" else f"{name}-{i}"
        )
        for i, case in enumerate(cases)
    ]


@pytest.fixture(scope="module")
def cases(datasets_dir: Path) -> dict[str, list[Any]]:
    folder = _folder()
    if folder is None:
        if Settings().require_datasets:
            pytest.fail("PERSONIFY_REQUIRE_DATASETS is set but the GrowthBook cases are missing")
        pytest.skip(f"GrowthBook conformance cases not available (conformance/{CASES_FILE})")
    data: dict[str, list[Any]] = json.loads((folder / CASES_FILE).read_text("utf-8"))
    return data


def test_every_assignment_section_is_complete(cases: dict[str, list[Any]]) -> None:
    assert {name: len(cases[name]) for name in EXPECTED_COUNTS} == EXPECTED_COUNTS


@pytest.mark.parametrize("index", _params("hash"))
def test_hash_matches_growthbook(cases: dict[str, list[Any]], index: int) -> None:
    seed, value, version, expected = cases["hash"][index]
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize("index", _params("getBucketRange"))
def test_bucket_ranges_match_growthbook(cases: dict[str, list[Any]], index: int) -> None:
    name, (count, coverage, weights), expected = cases["getBucketRange"][index]
    got = [[round(x, 6) for x in r] for r in bucket_ranges(count, coverage, weights)]
    assert got == expected, name


@pytest.mark.parametrize("index", _params("chooseVariation"))
def test_choose_variation_matches_growthbook(cases: dict[str, list[Any]], index: int) -> None:
    name, n, ranges, expected = cases["chooseVariation"][index]
    assert choose_variation(n, ranges) == expected, name


@pytest.mark.parametrize("index", _params("inNamespace"))
def test_in_namespace_matches_growthbook(cases: dict[str, list[Any]], index: int) -> None:
    name, user, namespace, expected = cases["inNamespace"][index]
    assert in_namespace(user, namespace) is expected, name


@pytest.mark.parametrize("index", _params("getEqualWeights"))
def test_equal_weights_match_growthbook(cases: dict[str, list[Any]], index: int) -> None:
    count, expected = cases["getEqualWeights"][index]
    assert [round(w, 8) for w in equal_weights(count)] == expected


@pytest.mark.parametrize("index", _params("run"))
def test_run_matches_growthbook(cases: dict[str, list[Any]], index: int) -> None:
    name, context, experiment, value, in_experiment, hash_used = cases["run"][index]
    spec = ExperimentSpec.from_growthbook(experiment, saved_groups=context.get("savedGroups"))
    ctx = AssignmentContext(
        attributes=context.get("attributes", {}),
        enabled=context.get("enabled", True),
        url=context.get("url", ""),
        forced_variations=context.get("forcedVariations", {}),
        qa_mode=context.get("qaMode", False),
        features=context.get("features", {}),
    )

    result = run(spec, ctx)

    assert (result.value, result.in_experiment, result.hash_used) == (
        value,
        in_experiment,
        hash_used,
    ), name
