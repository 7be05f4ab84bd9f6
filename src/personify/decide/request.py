"""What a caller may ask for: one identity, a context and the placements to fill.

Shared by ``POST /v1/decide``, the Python API and the CLI, so all three refuse the same bad
input with the same precise problems. The context is free-form (rules may read any key as
``context.<key>``), but the keys personify knows are type-checked, and ``local_hour`` and
``weekday`` are derived from ``timezone`` when the caller does not send them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from personify.decide.content import CHANNELS
from personify.errors import InvalidInput, Problem

MAX_PLACEMENTS: Final = 20
MAX_CONTEXT_BYTES: Final = 8192
MAX_ID: Final = 256
_LOCALE: Final = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}")
_EXAMPLE: Final = (
    'send {"userId": "u1", "context": {"channel": "web"}, "placements": ["home_hero"]}'
)
_TOP_LEVEL: Final = {"userId", "anonymousId", "context", "placements", "writeKey"}
_CHANNEL_MESSAGE: Final = f"must be one of {', '.join(CHANNELS)}"


@dataclass(frozen=True)
class DecideRequest:
    user_id: str | None
    anonymous_id: str | None
    placements: tuple[str, ...]
    context: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _text(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_context(context: object, where: str = "context") -> list[Problem]:
    """Problems with a request context (known keys are type-checked)."""
    if not isinstance(context, Mapping):
        return [Problem(where, 'must be an object such as {"channel": "web", "page": "/"}')]
    problems: list[Problem] = []
    if len(orjson.dumps(context, option=orjson.OPT_NON_STR_KEYS)) > MAX_CONTEXT_BYTES:
        problems.append(Problem(where, f"is larger than {MAX_CONTEXT_BYTES} bytes of JSON"))
    checks: dict[str, tuple[bool, str]] = {}
    if "channel" in context:
        checks["channel"] = (context["channel"] in CHANNELS, _CHANNEL_MESSAGE)
    if "page" in context:
        checks["page"] = (_text(context["page"], 2048), "must be a path or URL (text)")
    if "device" in context:
        checks["device"] = (_text(context["device"], 64), "must be text such as mobile or desktop")
    if "locale" in context:
        ok = isinstance(context["locale"], str) and bool(_LOCALE.fullmatch(context["locale"]))
        checks["locale"] = (ok, "must be a locale such as en-US")
    if "timezone" in context:
        ok = isinstance(context["timezone"], str) and zone(context["timezone"]) is not None
        checks["timezone"] = (ok, "must be an IANA time zone such as Europe/London")
    if "local_hour" in context:
        hour = context["local_hour"]
        ok = isinstance(hour, int) and not isinstance(hour, bool) and 0 <= hour <= 23
        checks["local_hour"] = (ok, "must be a whole number from 0 to 23")
    if "cart_value" in context:
        value = context["cart_value"]
        checks["cart_value"] = (_number(value) and value >= 0, "must be a number, 0 or more")
    if "location" in context:
        loc = context["location"]
        ok = isinstance(loc, Mapping) and all(
            isinstance(v, str | int | float) for v in loc.values()
        )
        checks["location"] = (ok, 'must be an object such as {"country": "US", "city": "Boston"}')
    for key, (ok, message) in checks.items():
        if not ok:
            problems.append(Problem(f"{where}.{key}", f"{message}; got {context[key]!r}"))
    return problems


def enrich_context(context: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The context plus ``local_hour`` and ``weekday`` (0 = Monday) in the caller's zone."""
    out = dict(context)
    tz = zone(out["timezone"]) if isinstance(out.get("timezone"), str) else None
    local = now.astimezone(tz) if tz is not None else now
    out.setdefault("local_hour", local.hour)
    out.setdefault("weekday", local.weekday())
    return out


def _identity(data: Mapping[str, Any], name: str, problems: list[Problem]) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # Segment accepts numeric ids
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        problems.append(Problem(name, f"must be a non-empty string of at most {MAX_ID} characters"))
        return None
    return value.strip()


def parse_request(data: object) -> DecideRequest:
    """Check a decide request body; raise :class:`InvalidInput` naming every problem."""
    if not isinstance(data, Mapping):
        raise InvalidInput(
            "a decide request is a JSON object",
            hint=_EXAMPLE,
            problems=[Problem("body", "must be an object")],
        )
    problems = [
        Problem(key, f"unknown field; allowed: {', '.join(sorted(_TOP_LEVEL))}")
        for key in data
        if key not in _TOP_LEVEL
    ]
    user_id = _identity(data, "userId", problems)
    anonymous_id = _identity(data, "anonymousId", problems)
    if (
        user_id is None
        and anonymous_id is None
        and not any(p.field in ("userId", "anonymousId") for p in problems)
    ):
        problems.append(Problem("userId", "give userId or anonymousId (or both)"))
    context = data.get("context")
    if context is None:
        context = {}
    problems.extend(check_context(context))
    placements = data.get("placements")
    names: list[str] = []
    if not isinstance(placements, list) or not placements:
        problems.append(Problem("placements", 'give a list of placement names, e.g. ["home_hero"]'))
    elif len(placements) > MAX_PLACEMENTS:
        problems.append(Problem("placements", f"at most {MAX_PLACEMENTS} placements per request"))
    else:
        for i, name in enumerate(placements):
            if not isinstance(name, str) or not name:
                problems.append(Problem(f"placements[{i}]", "must be a placement name"))
            elif name in names:
                problems.append(Problem(f"placements[{i}]", f"{name!r} is asked for twice"))
            else:
                names.append(name)
    if problems:
        raise InvalidInput(
            "invalid decide request: " + "; ".join(f"{p.field}: {p.message}" for p in problems),
            hint=_EXAMPLE,
            problems=problems,
        )
    assert isinstance(context, Mapping)
    return DecideRequest(user_id, anonymous_id, tuple(names), dict(context))


def unknown_placements(names: tuple[str, ...], known: Mapping[str, Any]) -> InvalidInput | None:
    """The error for placement names that are not defined, listing the defined ones."""
    problems = [
        Problem(f"placements[{i}]", f"no placement named {name!r}")
        for i, name in enumerate(names)
        if name not in known
    ]
    if not problems:
        return None
    listed = ", ".join(sorted(known)[:20]) or "(none yet)"
    return InvalidInput(
        "unknown placement: " + "; ".join(p.message for p in problems),
        hint=f"defined placements: {listed}; define more with `personify apply`",
        problems=problems,
    )


__all__ = [
    "DecideRequest",
    "check_context",
    "enrich_context",
    "parse_request",
    "unknown_placements",
]
