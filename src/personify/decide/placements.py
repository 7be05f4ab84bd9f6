"""Placements: named slots (``home_hero``, ``email_weekly_picks``) and what may fill them.

A placement definition (kind ``placement``)::

    {"channel": "web",
     "candidates": ["welcome_banner", "cart_reminder", "loyalty_picks"],
     "default": "welcome_banner",          # shown when no rule decides (must be a candidate)
     "caps": {"per_day": 20},              # impressions of this slot per person
     "description": "Hero banner on the home page"}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from personify.decide.content import CHANNELS, Caps, check_caps, parse_caps
from personify.errors import Problem

_PLACEMENT_KEYS: Final = {"channel", "candidates", "default", "caps", "description"}
MAX_CANDIDATES: Final = 200


@dataclass(frozen=True)
class Placement:
    key: str
    version: int
    channel: str
    candidates: tuple[str, ...]
    default: str | None
    caps: Caps = field(default_factory=Caps)
    description: str = ""

    @property
    def cap_key(self) -> str:
        return placement_cap_key(self.key)


def placement_cap_key(key: str) -> str:
    """Where a placement's impressions are counted (apart from content items')."""
    return "p:" + key


ContentLookup = Callable[[str], Mapping[str, Any] | None]
"""Returns a content body by key (from the same apply or the store), or ``None``."""


def check_placement(body: object, content: ContentLookup) -> list[Problem]:
    """Every problem with a placement definition; ``content`` resolves candidate keys."""
    if not isinstance(body, Mapping):
        return [Problem("", "a placement is a mapping with 'channel' and 'candidates'")]
    problems = [
        Problem(key, f'unknown field "{key}"; allowed: {", ".join(sorted(_PLACEMENT_KEYS))}')
        for key in body
        if key not in _PLACEMENT_KEYS
    ]
    channel = body.get("channel")
    if channel not in CHANNELS:
        problems.append(Problem("channel", f"{channel!r} is not a channel; use one of {CHANNELS}"))
    candidates = body.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        problems.append(Problem("candidates", "give a non-empty list of content keys"))
        candidates = []
    elif len(candidates) > MAX_CANDIDATES:
        problems.append(Problem("candidates", f"at most {MAX_CANDIDATES} candidates"))
    seen: set[str] = set()
    for i, key in enumerate(candidates):
        where = f"candidates[{i}]"
        if not isinstance(key, str):
            problems.append(Problem(where, "must be a content key"))
            continue
        if key in seen:
            problems.append(Problem(where, f"{key!r} is listed twice"))
        seen.add(key)
        found = content(key)
        if found is None:
            problems.append(Problem(where, f"no content named {key!r}; define it under content"))
        elif channel in CHANNELS and channel not in (found.get("variants") or {}):
            problems.append(Problem(where, f"content {key!r} has no {channel!r} variant"))
    default = body.get("default")
    if default is not None and default not in seen:
        problems.append(Problem("default", f"{default!r} must be one of the candidates"))
    if not isinstance(body.get("description", ""), str):
        problems.append(Problem("description", "must be text"))
    problems.extend(check_caps(body.get("caps"), "caps"))
    return problems


def compile_placement(key: str, version: int, body: Mapping[str, Any]) -> Placement:
    return Placement(
        key=key,
        version=version,
        channel=body["channel"],
        candidates=tuple(body["candidates"]),
        default=body.get("default"),
        caps=parse_caps(body.get("caps")),
        description=body.get("description", ""),
    )
