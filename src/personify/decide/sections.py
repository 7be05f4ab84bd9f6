"""The ``content``, ``placements`` and ``rules`` sections of a workspace (and the API's checks).

Definitions are checked the same way whether they come from ``personify apply`` or the API:
:func:`check_definition` is the one entry point, and references between them (a placement's
candidates, a rule's content) may point into the same apply or at what is already stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from personify.decide.catalog import CONTENT, PLACEMENT, RULE_SET
from personify.decide.content import check_content
from personify.decide.placements import check_placement
from personify.decide.rules import check_rules, rules_of
from personify.definitions import DefinitionStore
from personify.errors import NotFound, Problem
from personify.workspace import Plan, register_section

Lookup = Callable[[str], Mapping[str, Any] | None]


def stored(store: DefinitionStore, kind: str) -> Lookup:
    """Look a live definition body up in the store (``None`` if absent or deleted)."""

    def lookup(key: str) -> Mapping[str, Any] | None:
        try:
            return store.get(kind, key).body
        except NotFound:
            return None

    return lookup


def _planned(plan: Plan, section: str, kind: str, wrap: Callable[[Any], Any] = dict) -> Lookup:
    fallback = stored(plan.store, kind)

    def lookup(key: str) -> Mapping[str, Any] | None:
        value = plan.entry(section, key)
        if value is None:
            return fallback(key)
        try:
            body = wrap(value)
        except (TypeError, ValueError):
            return None
        return body if isinstance(body, Mapping) else None

    return lookup


def check_definition(
    kind: str, key: str, body: object, content: Lookup, placements: Lookup
) -> list[Problem]:
    """Problems with one content, placement or rule-set body (fields relative to the body)."""
    if kind == CONTENT:
        return check_content(key, body)
    if kind == PLACEMENT:
        return check_placement(body, content)
    if kind == RULE_SET:
        return check_rules(rules_of(body), placements(key), content, "rules")
    raise ValueError(f"not a decision definition kind: {kind}")


def _rules_body(entry: Any) -> dict[str, Any]:
    return {"rules": rules_of(entry)}


def _validate_content(key: str, entry: Any, plan: Plan) -> list[Problem]:
    return check_content(key, entry)


def _validate_placement(key: str, entry: Any, plan: Plan) -> list[Problem]:
    content = _planned(plan, "content", CONTENT)
    problems = check_placement(entry, content)
    if problems:
        return problems
    # Stored rules must still hold; rules in the same apply are checked by their own section.
    if plan.entry("rules", key) is not None:
        return []
    rules = stored(plan.store, RULE_SET)(key)
    if rules is None:
        return []
    return [
        Problem("candidates", f"its rules would break: rules{p.field}: {p.message}")
        for p in check_rules(rules_of(rules), entry, content)
    ]


def _validate_rules(key: str, entry: Any, plan: Plan) -> list[Problem]:
    placement = _planned(plan, "placements", PLACEMENT)(key)
    prefix = "rules" if isinstance(entry, Mapping) else ""  # the API's {"rules": [...]}
    return check_rules(rules_of(entry), placement, _planned(plan, "content", CONTENT), prefix)


register_section("content", _validate_content, kind=CONTENT)
register_section("placements", _validate_placement, kind=PLACEMENT)
register_section("rules", _validate_rules, kind=RULE_SET, to_body=_rules_body)
