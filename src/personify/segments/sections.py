"""The ``segments:`` section of a workspace file (``personify apply``)::

segments:
  cart_abandoner:
    name: Cart abandoners
    condition:
      $sequence: {first: {name: Product Added}, notFollowedBy: {name: Order Completed},
                  within: 24h}
  vip_buyers:
    name: VIPs who bought
    condition: {segments: {$elemMatch: {$eq: vip}}, computed.orders: {$gte: 1}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personify.errors import PersonifyError, Problem
from personify.segments.definition import KIND, segment_refs, validate
from personify.segments.templates import template
from personify.workspace import Plan, register_section

SECTION = "segments"


def _expand(key: str, entry: Any) -> Any:
    """A ``template:`` entry becomes the template's body (name/description may override)."""
    if not isinstance(entry, Mapping) or "template" not in entry:
        return entry
    body = template(str(entry["template"]), key, **dict(entry.get("params") or {}))
    body.update({k: v for k, v in entry.items() if k in ("name", "description", "tags")})
    return body


def _validate(key: str, entry: Any, plan: Plan) -> list[Problem]:
    if isinstance(entry, Mapping) and "template" in entry:
        extra = set(entry) - {"template", "params", "name", "description", "tags"}
        if extra:
            return [
                Problem(
                    "template",
                    f"a template entry takes template, params, name, "
                    f"description and tags; not {sorted(extra)}",
                )
            ]
        if not isinstance(entry.get("params", {}), Mapping):
            return [Problem("params", "params is a mapping of parameter: value")]
        try:
            entry = _expand(key, entry)
        except PersonifyError as exc:
            return [Problem("template", f"{exc.message}; {exc.hint}" if exc.hint else exc.message)]
    if not isinstance(entry, Mapping):
        return validate(entry)
    if "key" in entry and entry["key"] != key:
        return [Problem("key", f"the entry is under {key!r}; remove key or make it equal")]
    problems = validate({**entry, "key": key})
    for ref in sorted(segment_refs(entry.get("condition"))):
        if not plan.exists(SECTION, ref):
            problems.append(
                Problem(
                    "condition.segments",
                    f"unknown segment {ref!r}; define it in this workspace or create it first",
                )
            )
    return problems


def _body(entry: Any) -> dict[str, Any]:
    """The stored body: templates expanded, without the key (the entry's name is the key)."""
    expanded = _expand("entry", entry)
    return {k: v for k, v in dict(expanded).items() if k != "key"}


register_section(SECTION, _validate, kind=KIND, to_body=_body)
