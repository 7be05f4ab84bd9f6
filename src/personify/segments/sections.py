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

from personify.errors import Problem
from personify.segments.definition import KIND, segment_refs, validate
from personify.workspace import Plan, register_section

SECTION = "segments"


def _validate(key: str, entry: Any, plan: Plan) -> list[Problem]:
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
    return {k: v for k, v in dict(entry).items() if k != "key"}


register_section(SECTION, _validate, kind=KIND, to_body=_body)
