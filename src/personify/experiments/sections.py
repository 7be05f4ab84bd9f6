"""The ``experiments`` section of a workspace (``personify apply``): validated, then stored.

Each entry is checked with :func:`~.definitions.check_experiment` and its references are
resolved against the same apply or the store: the placement must exist, and so must every
content item a variant shows. Entries are stored as definitions of kind ``experiment``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personify.errors import Problem
from personify.experiments.definitions import check_experiment, compile_experiment
from personify.workspace import Plan, register_section


def validate_entry(key: str, entry: Any, plan: Plan) -> list[Problem]:
    """Shape problems, then unresolved placement and content references."""
    problems = check_experiment(key, entry)
    if problems or not isinstance(entry, Mapping):
        return problems
    placement = entry.get("placement")
    if placement is not None and not plan.exists("placements", placement):
        problems.append(
            Problem("placement", f"no placement named {placement!r}; define it under placements")
        )
    for variant in compile_experiment(key, entry).variants:
        if variant.content is not None and not plan.exists("content", variant.content):
            problems.append(
                Problem(
                    f"variants.{variant.key}",
                    f"no content named {variant.content!r}; define it under content",
                )
            )
    return problems


register_section("experiments", validate_entry, kind="experiment")
