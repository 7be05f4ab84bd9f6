"""``personify apply`` refuses unquoted scalars that YAML 1.1 reads as something else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personify import workspace
from personify.definitions import MemoryDefinitionStore
from personify.errors import InvalidInput, Problem
from personify.workspace import Plan, apply, register_section


def _anything(key: str, entry: Any, plan: Plan) -> list[Problem]:
    return []


@pytest.fixture(autouse=True)
def test_sections() -> Iterator[None]:
    saved = workspace.sections()  # the real sections too, so that they stay registered
    register_section("widgets", _anything, kind="widget")
    yield
    workspace._SECTIONS.clear()
    workspace._SECTIONS.update(saved)


def _apply(tmp_path: Path, text: str) -> MemoryDefinitionStore:
    store = MemoryDefinitionStore()
    (tmp_path / "ws.yaml").write_text(text)
    apply(tmp_path / "ws.yaml", store, actor="ada")
    return store


@pytest.mark.parametrize(
    ("value", "read_as"),
    [
        ("NO", "the boolean false"),
        ("yes", "the boolean true"),
        ("off", "the boolean false"),
        ("On", "the boolean true"),
        ("01234", "the octal number 668"),
        ("-017", "the octal number -15"),
        ("12:30", "the base-60 number 750"),
        ("1:30.5", "the base-60 number 90.5"),
        ("0b101", "the binary number 5"),
        ("2026-11-24", "a date, not text"),
        ("2026-11-24 10:00:00", "a date, not text"),
    ],
)
def test_an_unquoted_yaml11_scalar_is_refused_with_its_line(
    tmp_path: Path, value: str, read_as: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        _apply(tmp_path, f"widgets:\n  w1:\n    size: 3\n    code: {value}\n")
    [problem] = info.value.problems
    assert problem.field == f"{tmp_path / 'ws.yaml'}:4"
    assert problem.message.startswith(f"widgets.w1.code: unquoted {value} is read as {read_as}")
    assert f'quote it ("{value}")' in problem.message


def test_a_yaml11_key_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        _apply(tmp_path, "widgets:\n  w1:\n    yes: 1\n")
    assert [p.field for p in info.value.problems] == [f"{tmp_path / 'ws.yaml'}:3"]


def test_every_refused_scalar_is_listed_once_even_through_an_alias(tmp_path: Path) -> None:
    text = "widgets:\n  w1: &w {a: NO, b: 0755}\n  w2: *w\n"
    with pytest.raises(InvalidInput) as info:
        _apply(tmp_path, text)
    assert [p.message.split(":")[0] for p in info.value.problems] == [
        "widgets.w1.a",
        "widgets.w1.b",
    ]


def test_quoted_values_and_plain_booleans_and_numbers_are_kept(tmp_path: Path) -> None:
    text = (
        "widgets:\n"
        "  w1:\n"
        '    codes: ["NO", \'01234\', "12:30", "2026-11-24"]\n'
        "    flags: [true, false, True, FALSE]\n"
        "    numbers: [0, -0, 10, -42, 0x1f, 1.5, 1.0e+3, 0.5]\n"
        "    block: |\n"
        "      yes\n"
    )
    body = _apply(tmp_path, text).get("widget", "w1").body
    assert body["codes"] == ["NO", "01234", "12:30", "2026-11-24"]
    assert body["flags"] == [True, False, True, False]
    assert body["numbers"] == [0, 0, 10, -42, 31, 1.5, 1000.0, 0.5]
    assert body["block"] == "yes\n"
