"""Content items: what can be shown, in one variant per channel, with templated fields.

A content definition (kind ``content``)::

    {"type": "banner",                         # banner | product_block | message | offer
     "attributes": {"category": "Shoes"},      # free data: ranking paths and templates read it
     "variants": {"web":   {"headline": "Hello {{ traits.first_name | default('there') }}",
                            "url": "/new", "image": "/img/new.jpg"},
                  "email": {"subject": "New in for you"}},
     "fallback": {"headline": "New arrivals"}, # static fields if a template fails to render
     "caps": {"per_day": 3},                   # impressions per person (hour/day/week)
     "dismissible": true}

String fields are templates (see :mod:`personify.decide.templates`); numbers, booleans, lists
and objects are passed through as data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from personify.decide.templates import FieldTemplates, check_template
from personify.errors import Problem

CHANNELS: Final = ("web", "email", "mobile", "push")
HTML_CHANNELS: Final = frozenset({"web", "email"})
CONTENT_TYPES: Final = ("banner", "product_block", "message", "offer")
CAP_WINDOWS: Final = {"per_hour": 3600.0, "per_day": 86400.0, "per_week": 7 * 86400.0}
FIELD_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_CONTENT_KEYS: Final = {
    "type",
    "title",
    "attributes",
    "variants",
    "fallback",
    "caps",
    "dismissible",
}


@dataclass(frozen=True)
class Caps:
    """Most impressions per person in each window, e.g. ``{"per_day": 3}``."""

    limits: tuple[tuple[float, int, str], ...] = ()  # (window seconds, most, window name)

    @property
    def longest(self) -> float:
        return max((w for w, _, _ in self.limits), default=0.0)


@dataclass(frozen=True)
class Variant:
    """One channel's fields: templates to render and data to pass through."""

    channel: str
    templates: FieldTemplates | None
    data: Mapping[str, Any]
    order: tuple[str, ...] = ()  # the fields as written, so responses read the same way


@dataclass(frozen=True)
class ContentItem:
    key: str
    version: int
    type: str
    title: str
    attributes: Mapping[str, Any]
    variants: Mapping[str, Variant]
    fallback: Mapping[str, Any] | None
    caps: Caps = field(default_factory=Caps)
    dismissible: bool = True


def content_cap_key(key: str) -> str:
    """Where a content item's impressions are counted (apart from placements')."""
    return "c:" + key


def _unknown_keys(body: Mapping[str, Any], allowed: set[str], where: str) -> list[Problem]:
    return [
        Problem(
            f"{where}{key}",
            f'unknown field "{key}"; allowed: {", ".join(sorted(allowed))}',
        )
        for key in body
        if key not in allowed
    ]


def is_template(value: object) -> bool:
    """Whether a field needs Jinja at all; plain text is served as is (much faster)."""
    return isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#"))


def _plain(value: Any) -> Any:
    # Served exactly as Jinja would render it: literal text is not escaped, and Jinja drops
    # one trailing newline.
    if isinstance(value, str) and value.endswith("\n"):
        return value[:-1]
    return value


def check_caps(caps: object, where: str) -> list[Problem]:
    """Problems with a caps mapping such as ``{"per_day": 3}``."""
    if caps is None:
        return []
    if not isinstance(caps, Mapping):
        return [Problem(where, 'caps must be a mapping such as {"per_day": 3}')]
    problems = _unknown_keys(caps, set(CAP_WINDOWS), f"{where}.")
    for name, most in caps.items():
        if name in CAP_WINDOWS and (
            isinstance(most, bool) or not isinstance(most, int) or most < 1
        ):
            problems.append(Problem(f"{where}.{name}", "must be a whole number of at least 1"))
    return problems


def parse_caps(caps: Mapping[str, int] | None) -> Caps:
    items = sorted((CAP_WINDOWS[name], most, name) for name, most in (caps or {}).items())
    return Caps(tuple(items))


def _check_fields(fields: object, where: str, templates: bool) -> list[Problem]:
    if not isinstance(fields, Mapping) or not fields:
        return [Problem(where, 'must be a non-empty mapping of fields, e.g. {"headline": "Hi"}')]
    problems: list[Problem] = []
    for name, value in fields.items():
        sub = f"{where}.{name}"
        if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
            problems.append(Problem(sub, "field names are letters, digits and _"))
        elif isinstance(value, str) and templates:
            problems.extend(check_template(value, sub))
    return problems


def check_content(key: str, body: object) -> list[Problem]:
    """Every problem with a content definition (fields relative to the body)."""
    if not isinstance(body, Mapping):
        return [Problem("", "a content item is a mapping with at least 'variants'")]
    problems = _unknown_keys(body, _CONTENT_KEYS, "")
    kind = body.get("type", "banner")
    if kind not in CONTENT_TYPES:
        problems.append(
            Problem("type", f"{kind!r} is not a content type; use one of {CONTENT_TYPES}")
        )
    if not isinstance(body.get("title", ""), str):
        problems.append(Problem("title", "must be text"))
    if not isinstance(body.get("attributes", {}), Mapping):
        problems.append(Problem("attributes", "must be a mapping of attribute names to values"))
    if not isinstance(body.get("dismissible", True), bool):
        problems.append(Problem("dismissible", "must be true or false"))
    variants = body.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        problems.append(
            Problem("variants", f"give at least one channel variant ({', '.join(CHANNELS)})")
        )
    else:
        for channel, fields in variants.items():
            if channel not in CHANNELS:
                problems.append(
                    Problem(f"variants.{channel}", f"unknown channel; use one of {CHANNELS}")
                )
                continue
            problems.extend(_check_fields(fields, f"variants.{channel}", templates=True))
    if body.get("fallback") is not None:
        problems.extend(_check_fields(body["fallback"], "fallback", templates=False))
    problems.extend(check_caps(body.get("caps"), "caps"))
    return problems


def compile_content(key: str, version: int, body: Mapping[str, Any]) -> ContentItem:
    """Compile a content body that :func:`check_content` accepted."""
    variants: dict[str, Variant] = {}
    for channel, fields in body["variants"].items():
        html = channel in HTML_CHANNELS
        sources = {name: value for name, value in fields.items() if is_template(value)}
        templates = FieldTemplates(sources, html=html) if sources else None
        data = {name: _plain(value) for name, value in fields.items() if not is_template(value)}
        variants[channel] = Variant(channel, templates, data, tuple(fields))
    return ContentItem(
        key=key,
        version=version,
        type=body.get("type", "banner"),
        title=body.get("title", ""),
        attributes=dict(body.get("attributes") or {}),
        variants=variants,
        fallback=dict(body["fallback"]) if body.get("fallback") else None,
        caps=parse_caps(body.get("caps")),
        dismissible=body.get("dismissible", True),
    )
