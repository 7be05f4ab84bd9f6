"""Workspace as code: validate everything first, then write only what changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from personify import workspace
from personify.cli.main import app
from personify.definitions import MemoryDefinitionStore, open_sqlite
from personify.errors import InvalidInput, NotFound, Problem
from personify.workspace import Plan, apply, register_section


def _validate_widget(key: str, entry: Any, plan: Plan) -> list[Problem]:
    if not isinstance(entry, dict):
        return [Problem("", "a widget is a mapping")]
    problems = []
    if not isinstance(entry.get("size"), int):
        problems.append(Problem("size", "size must be a whole number"))
    for i, part in enumerate(entry.get("parts", [])):
        if not plan.exists("gadgets", part):
            problems.append(Problem(f"parts[{i}]", f"no gadget named {part!r}"))
    return problems


def _validate_gadget(key: str, entry: Any, plan: Plan) -> list[Problem]:
    return [] if isinstance(entry, list) else [Problem("", "a gadget is a list")]


@pytest.fixture(autouse=True)
def test_sections() -> Iterator[None]:
    # The real sections first: a module importing later would register into the dict this
    # restores, and be lost to every test that runs after this one.
    saved = workspace.sections()
    register_section("gadgets", _validate_gadget, kind="gadget", to_body=lambda e: {"items": e})
    register_section("widgets", _validate_widget, kind="widget")
    yield
    workspace._SECTIONS.clear()
    workspace._SECTIONS.update(saved)


GOOD = """\
gadgets:
  bolt: [1, 2]
widgets:
  w1:
    size: 3
    parts: [bolt]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_apply_writes_a_version_per_entry_then_nothing_when_unchanged(tmp_path: Path) -> None:
    store = MemoryDefinitionStore()
    changes = apply(write(tmp_path / "ws.yaml", GOOD), store, actor="ada")
    assert [(c.section, c.key, c.action, c.version) for c in changes] == [
        ("gadgets", "bolt", "create", 1),
        ("widgets", "w1", "create", 1),
    ]
    assert store.get("gadget", "bolt").body == {"items": [1, 2]}
    assert store.get("widget", "w1").message == "apply ws.yaml"
    again = apply(tmp_path / "ws.yaml", store, actor="ada")
    assert [c.action for c in again] == ["unchanged", "unchanged"]
    assert store.revision() == 2


def test_dry_run_reports_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    store = MemoryDefinitionStore()
    apply(write(tmp_path / "ws.yaml", GOOD), store, actor="ada")
    write(tmp_path / "ws.yaml", GOOD.replace("size: 3", "size: 4"))
    changes = apply(tmp_path / "ws.yaml", store, actor="ada", dry_run=True)
    update = [c for c in changes if c.action == "update"]
    assert [(c.key, c.version, c.diff) for c in update] == [("w1", None, ["~ size: 3 -> 4"])]
    assert store.get("widget", "w1").body["size"] == 3


def test_one_invalid_entry_means_nothing_is_written(tmp_path: Path) -> None:
    store = MemoryDefinitionStore()
    bad = GOOD + "  w2:\n    size: big\n    parts: [bolt, nut]\n"
    with pytest.raises(InvalidInput) as err:
        apply(write(tmp_path / "ws.yaml", bad), store, actor="ada")
    fields = [p.field for p in err.value.problems]
    assert fields == [
        f"{tmp_path / 'ws.yaml'}:8: widgets.w2.size",
        f"{tmp_path / 'ws.yaml'}:9: widgets.w2.parts[1]",
    ]
    assert "nothing was applied" in err.value.message
    assert err.value.hint
    assert store.revision() == 0


def test_references_may_point_at_definitions_already_in_the_store(tmp_path: Path) -> None:
    store = MemoryDefinitionStore()
    store.put("gadget", "nut", {"items": []}, actor="ada")
    text = "widgets:\n  w1: {size: 1, parts: [nut]}\n"
    assert apply(write(tmp_path / "ws.yaml", text), store, actor="ada")[0].action == "create"


def test_unknown_section_is_named_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        apply(write(tmp_path / "ws.yaml", "widgest:\n  a: {}\n"), MemoryDefinitionStore(), "ada")
    [problem] = err.value.problems
    assert problem.field.endswith("ws.yaml:1: widgest")
    assert 'did you mean "widgets"' in problem.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("widgets:\n  w1: {size: 1}\n  w1: {size: 2}\n", "key written twice (lines 2 and 3)"),
        ("widgets:\n  w1: {size: [1\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping of sections"),
        ("widgets: [1, 2]\n", "must map each key"),
        ("widgets:\n  'bad key': {size: 1}\n", "not a valid key"),
        ("widgets:\n  w1: !!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_malformed_files_are_refused_precisely(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as err:
        apply(write(tmp_path / "ws.yaml", text), MemoryDefinitionStore(), "ada")
    assert any(expected in p.message for p in err.value.problems), err.value.problems


def test_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    text = "widgets:\n  w1:\n" + "\n".join("    " + line for line in lines) + "\n"
    with pytest.raises(InvalidInput, match="expands to more than"):
        apply(write(tmp_path / "ws.yaml", text), MemoryDefinitionStore(), "ada")


def test_a_folder_is_one_workspace_and_a_key_may_be_defined_once(tmp_path: Path) -> None:
    write(tmp_path / "ws" / "a.yaml", "gadgets:\n  bolt: [1]\n")
    write(tmp_path / "ws" / "sub" / "b.yml", "widgets:\n  w1: {size: 1, parts: [bolt]}\n")
    store = MemoryDefinitionStore()
    assert len(apply(tmp_path / "ws", store, "ada")) == 2
    write(tmp_path / "ws" / "c.yaml", "gadgets:\n  bolt: [2]\n")
    with pytest.raises(InvalidInput) as err:
        apply(tmp_path / "ws", store, "ada")
    [problem] = err.value.problems
    assert "c.yaml:2: gadgets.bolt" in problem.field and "a.yaml:2" in problem.message


def test_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        apply(tmp_path / "nope.yaml", MemoryDefinitionStore(), "ada")


def test_cli_apply_dry_run_then_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    path = write(tmp_path / "ws.yaml", GOOD)
    runner = CliRunner()
    dry = runner.invoke(app, ["apply", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would apply" in dry.output and "2 changed" in dry.output
    done = runner.invoke(app, ["apply", str(path), "--actor", "ada", "--diff"])
    assert done.exit_code == 0, done.output
    assert "+ size: 3" in done.output
    store = open_sqlite(tmp_path / "data")
    assert store.get("widget", "w1").actor == "ada"
    store.close()
    bad = runner.invoke(app, ["apply", str(write(tmp_path / "bad.yaml", "widgets:\n  w: {}\n"))])
    assert bad.exit_code == 2
    assert "widgets.w.size" in bad.output
