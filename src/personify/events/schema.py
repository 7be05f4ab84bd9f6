"""The Segment message spec as pydantic models, and the error messages callers see.

A message is validated against the model of its ``type``; what passes is normalized into a
plain dict (camelCase keys as in the spec) that the rest of the engine works with.

>>> msg = validate_message({"type": "track", "event": "Signed Up", "userId": "u1"})
>>> msg["event"], msg["userId"]
('Signed Up', 'u1')
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from personify.errors import InvalidInput, Problem

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")


# Segment clients may send numeric ids; the spec treats ids as strings (coerced below).
Identifier = Annotated[str, Field(max_length=1024)]


@with_config(ConfigDict(extra="allow", coerce_numbers_to_str=True))
class _Base(TypedDict):
    # Field names follow the Segment spec. TypedDicts validate to plain dicts, several times
    # faster than models on this hot path.
    messageId: NotRequired[Identifier]
    timestamp: NotRequired[datetime | None]
    originalTimestamp: NotRequired[datetime | None]
    sentAt: NotRequired[datetime | None]
    userId: NotRequired[Identifier | None]
    anonymousId: NotRequired[Identifier | None]
    context: NotRequired[dict[str, Any]]
    integrations: NotRequired[dict[str, Any]]


class Track(_Base):
    type: Literal["track"]
    event: Annotated[str, Field(min_length=1, max_length=512)]
    properties: NotRequired[dict[str, Any]]


class Identify(_Base):
    type: Literal["identify"]
    traits: NotRequired[dict[str, Any]]


class Page(_Base):
    type: Literal["page"]
    name: NotRequired[str | None]
    category: NotRequired[str | None]
    properties: NotRequired[dict[str, Any]]


class Screen(_Base):
    type: Literal["screen"]
    name: NotRequired[str | None]
    category: NotRequired[str | None]
    properties: NotRequired[dict[str, Any]]


class Group(_Base):
    type: Literal["group"]
    groupId: Identifier
    traits: NotRequired[dict[str, Any]]


class Alias(_Base):
    type: Literal["alias"]
    previousId: Identifier


Message = Annotated[Track | Identify | Page | Screen | Group | Alias, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Track | Identify | Page | Screen | Group | Alias] = TypeAdapter(Message)


def _loc(loc: tuple[int | str, ...]) -> str:
    # Drop the discriminator tag pydantic inserts ("track") so paths read like the payload.
    parts = [str(p) for p in loc]
    if parts and parts[0] in MESSAGE_TYPES:
        parts = parts[1:]
    return ".".join(parts) or "(message)"


def _problems(exc: ValidationError, prefix: str) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        where = _loc(tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
            where = "type"
            msg = f"must be one of {', '.join(MESSAGE_TYPES)}"
        elif err["type"] == "missing":
            msg = "is required for this message type"
        out.append(Problem(f"{prefix}{where}", msg))
    return out


def validate_message(raw: object, *, prefix: str = "") -> dict[str, Any]:
    """Validate one raw message and return it normalized (timestamps as aware datetimes).

    Raises :class:`InvalidInput` whose ``problems`` name each offending field.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(
            "a message must be a JSON object",
            problems=[Problem(prefix.rstrip(".") or "(message)", "expected a JSON object")],
        )
    try:
        model = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = _problems(exc, prefix)
        raise InvalidInput(
            "message failed validation: " + "; ".join(f"{p.field} {p.message}" for p in problems),
            hint="fix the listed fields; the Segment spec is at https://segment.com/docs/connections/spec/",
            problems=problems,
        ) from None
    out: dict[str, Any] = {k: v for k, v in model.items() if v is not None}
    if not out.get("userId") and not out.get("anonymousId"):
        raise InvalidInput(
            "message has neither userId nor anonymousId",
            hint="send a userId for known users or an anonymousId for visitors",
            problems=[Problem(f"{prefix}userId", "userId or anonymousId is required")],
        )
    if out["type"] == "alias" and not out.get("userId"):
        raise InvalidInput(
            "alias needs the new userId",
            problems=[Problem(f"{prefix}userId", "alias requires userId and previousId")],
        )
    return out
