"""GrowthBook's SDK conformance suite: every ``evalCondition`` case gives GrowthBook's answer.

The cases (``growthbook_cases.json``, spec 0.8.0, MIT) live in the shared ``conformance``
folder, the sibling of ``PERSONIFY_DATASETS_DIR``. Each case is
``[name, condition, attributes, expected, savedGroups?]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from personify.config import Settings
from personify.segments import compile_condition

pytestmark = [pytest.mark.datasets]

CASES_FILE = "growthbook_cases.json"
EXPECTED_CASES = 248


def _find_conformance_dir() -> Path | None:
    datasets = Settings().datasets_dir
    if datasets is None:
        return None
    folder = datasets.resolve().parent / "conformance"
    return folder if (folder / CASES_FILE).is_file() else None


def _load_cases(folder: Path) -> list[list[Any]]:
    cases: list[list[Any]] = json.loads((folder / CASES_FILE).read_text("utf-8"))["evalCondition"]
    return cases


def _case_params() -> list[Any]:
    """One parameter per case, named after it (collected before fixtures can skip)."""
    folder = _find_conformance_dir()
    if folder is None:
        return [pytest.param(None, id="conformance-cases-missing")]
    return [pytest.param(index, id=case[0]) for index, case in enumerate(_load_cases(folder))]


@pytest.fixture(scope="module")
def conformance_dir() -> Path:
    settings = Settings()
    folder = _find_conformance_dir()
    if folder is None:
        where = settings.datasets_dir and settings.datasets_dir.resolve().parent / "conformance"
        if settings.require_datasets:
            pytest.fail(
                f"PERSONIFY_REQUIRE_DATASETS is set but the conformance cases are missing: {where}"
            )
        pytest.skip(
            "GrowthBook conformance cases not available: set PERSONIFY_DATASETS_DIR to the "
            f"shared datasets folder (the cases are in its sibling conformance/{CASES_FILE})"
        )
    return folder


@pytest.fixture(scope="module")
def eval_condition_cases(conformance_dir: Path) -> list[list[Any]]:
    return _load_cases(conformance_dir)


def test_the_suite_has_every_eval_condition_case(eval_condition_cases: list[list[Any]]) -> None:
    assert len(eval_condition_cases) == EXPECTED_CASES


@pytest.mark.parametrize("index", _case_params())
def test_eval_condition_case_matches_growthbook(
    eval_condition_cases: list[list[Any]], index: int
) -> None:
    name, condition, attributes, expected, *rest = eval_condition_cases[index]
    saved_groups = rest[0] if rest else None

    result = compile_condition(condition, saved_groups=saved_groups)(attributes)

    assert result is expected, (
        f"{name}: condition {json.dumps(condition)} on {json.dumps(attributes)} "
        f"gave {result}, GrowthBook gives {expected}"
    )
