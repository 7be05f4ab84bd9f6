"""Content, placements and rules are checked before anything is stored, with precise fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.decide.conftest import BASE, load

from personify.definitions import MemoryDefinitionStore
from personify.errors import InvalidInput


def problems_of(text: str, tmp_path: Path) -> list[tuple[str, str]]:
    store = MemoryDefinitionStore()
    with pytest.raises(InvalidInput) as err:
        load(store, text, tmp_path)
    assert store.revision() == 0, "nothing may be written when anything is invalid"
    return [(p.field.split(": ", 1)[1], p.message) for p in err.value.problems]


def test_the_base_workspace_is_valid(tmp_path: Path) -> None:
    store = MemoryDefinitionStore()
    load(store, BASE, tmp_path)
    assert [d.key for d in store.list("content")] == ["bags", "cart", "shoes", "welcome", "winback"]
    assert store.get("placement", "hero").body["default"] == "welcome"


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        ("{variants: {}}", "content.x.variants", "at least one channel"),
        ("{variants: {fax: {a: b}}}", "content.x.variants.fax", "unknown channel"),
        ("{variants: {web: {a: '{{ x.__class__ }}'}}}", "content.x.variants.web.a", "private"),
        ("{variants: {web: {a: '{{ oops'}}}", "content.x.variants.web.a", "does not parse"),
        ("{variants: {web: {a: b}}, type: popup}", "content.x.type", "not a content type"),
        ("{variants: {web: {a: b}}, caps: {per_day: 0}}", "content.x.caps.per_day", "at least 1"),
        ("{variants: {web: {a: b}}, caps: {daily: 3}}", "content.x.caps.daily", "unknown field"),
        ("{variants: {web: {a: b}}, colour: red}", "content.x.colour", "unknown field"),
        ("{variants: {web: {'bad name': b}}}", "content.x.variants.web.bad name", "letters"),
    ],
)
def test_bad_content_is_refused(tmp_path: Path, content: str, field: str, message: str) -> None:
    found = problems_of(f"content:\n  x: {content}\n", tmp_path)
    assert any(f == field and message in m for f, m in found), found


@pytest.mark.parametrize(
    ("placement", "field", "message"),
    [
        ("{channel: fax, candidates: [welcome]}", "placements.p.channel", "not a channel"),
        ("{channel: web, candidates: []}", "placements.p.candidates", "non-empty"),
        ("{channel: web, candidates: [ghost]}", "placements.p.candidates[0]", "no content"),
        ("{channel: push, candidates: [welcome]}", "placements.p.candidates[0]", "no 'push'"),
        ("{channel: web, candidates: [welcome, welcome]}", "placements.p.candidates[1]", "twice"),
        ("{channel: web, candidates: [welcome], default: cart}", "placements.p.default", "one of"),
    ],
)
def test_bad_placements_are_refused(
    tmp_path: Path, placement: str, field: str, message: str
) -> None:
    found = problems_of(BASE + f"  p: {placement}\n", tmp_path)
    assert any(f == field and message in m for f, m in found), found


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ("{id: r, show: ghost}", "rules.hero[0].show", "not a candidate"),
        ("{id: r}", "rules.hero[0]", "exactly one outcome"),
        ("{id: r, show: cart, next: true}", "rules.hero[0]", "exactly one outcome"),
        ("{show: cart}", "rules.hero[0].id", "needs an id"),
        (
            "{id: r, when: {computed.orders: {$gtt: 1}}, show: cart}",
            "rules.hero[0].when.computed.orders.$gtt",
            "unknown operator",
        ),
        ("{id: r, when: {orders: 1}, show: cart}", "rules.hero[0].when.orders", "paths start"),
        ("{id: r, rank: {score: scores.x, scorer: y}}", "rules.hero[0].rank", "exactly one"),
        (
            "{id: r, rank: {score: 'scores.{colour}'}}",
            "rules.hero[0].rank.score",
            "no attribute 'colour'",
        ),
        ("{id: r, next: true, exclude: [ghost]}", "rules.hero[0].exclude[0]", "not a candidate"),
        ("{id: r, next: yes please}", "rules.hero[0].next", "next: true"),
        ("{id: r, show: cart, among: [cart]}", "rules.hero[0].among", "goes with rank or use"),
        ("{id: r, use: 'not a name!'}", "rules.hero[0].use", "registered policy"),
    ],
)
def test_bad_rules_are_refused(tmp_path: Path, rule: str, field: str, message: str) -> None:
    found = problems_of(BASE + f"rules:\n  hero:\n    - {rule}\n", tmp_path)
    assert any(f == field and message in m for f, m in found), found


def test_rules_need_their_placement_and_unique_ids(tmp_path: Path) -> None:
    found = problems_of(BASE + "rules:\n  nowhere:\n    - {id: a, show: cart}\n", tmp_path)
    assert found == [("rules.nowhere", found[0][1])]
    assert "no placement" in found[0][1]
    twice = BASE + "rules:\n  hero:\n    - {id: a, show: cart}\n    - {id: a, show: winback}\n"
    assert ("rules.hero[1].id", "rule id 'a' is used twice") in problems_of(twice, tmp_path)


def test_problems_point_at_the_line(tmp_path: Path) -> None:
    store = MemoryDefinitionStore()
    text = BASE + "rules:\n  hero:\n    - id: r\n      show: ghost\n"
    with pytest.raises(InvalidInput) as err:
        load(store, text, tmp_path)
    [problem] = err.value.problems
    line = BASE.count("\n") + 4
    assert problem.field == f"{tmp_path / 'ws.yaml'}:{line}: rules.hero[0].show"


def test_a_placement_change_may_not_break_its_stored_rules(tmp_path: Path) -> None:
    store = MemoryDefinitionStore()
    load(store, BASE + "rules:\n  hero:\n    - {id: r, show: cart}\n", tmp_path)
    narrower = "placements:\n  hero: {channel: web, candidates: [welcome], default: welcome}\n"
    with pytest.raises(InvalidInput) as err:
        load(store, narrower, tmp_path, "narrow.yaml")
    [problem] = err.value.problems
    assert problem.field.endswith("placements.hero.candidates")
    assert "rules[0].show: 'cart' is not a candidate" in problem.message
    # changing both together is fine
    load(store, narrower + "rules:\n  hero:\n    - {id: r, show: welcome}\n", tmp_path, "both.yaml")
    assert store.get("placement", "hero").version == 2
