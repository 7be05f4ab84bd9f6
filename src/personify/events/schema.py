"""The Segment message spec as pydantic models, and the error messages callers see.

A message is validated against the model of its ``type``; what passes is normalized into a
plain dict (camelCase keys as in the spec) that the rest of the engine works with.

>>> msg = validate_message({"type": "track", "event": "Signed Up", "userId": "u1"})
>>> msg["event"], msg["userId"]
('Signed Up', 'u1')
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from personify.errors import InvalidInput, Problem

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")


_EXACT_FLOAT_INT: Final = 2**53  # beyond this a float no longer holds every integer
_SEND_STRINGS: Final = "send identifiers as strings"
_TIMESTAMP_FIELDS: Final = frozenset({"timestamp", "originalTimestamp", "sentAt"})
_TIMESTAMP_EXPECTED: Final = (
    "must be an ISO-8601 datetime such as 2026-11-24T10:00:00Z "
    "(or with an offset, 2026-11-24T10:00:00+01:00)"
)


def _numeric_identifier(value: object) -> object:
    """Numbers as the identity they name: ``42`` and ``42.0`` are both ``"42"``.

    Segment clients may send numeric ids; the spec treats ids as strings. A float is taken
    only when it is a whole number a float holds exactly (JSON parsers turn integers beyond
    64 bits into such floats, so ``1.2345678901234568e+29`` is not the id that was meant).
    """
    if type(value) is int:
        return str(value)
    if type(value) is float:
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number; {_SEND_STRINGS}")
        if not -_EXACT_FLOAT_INT < value < _EXACT_FLOAT_INT:
            raise ValueError(f"{value!r} is too large to be exact (2**53); {_SEND_STRINGS}")
        return str(int(value))
    return value


def _not_blank(value: str) -> str:
    if not value or value.isspace():
        raise ValueError("must not be empty; omit it to let the server derive one")
    return value


Identifier = Annotated[str, BeforeValidator(_numeric_identifier), Field(max_length=1024)]
MessageId = Annotated[Identifier, AfterValidator(_not_blank)]


@with_config(ConfigDict(extra="allow", coerce_numbers_to_str=True))
class _Base(TypedDict):
    # Field names follow the Segment spec. TypedDicts validate to plain dicts, several times
    # faster than models on this hot path.
    messageId: NotRequired[MessageId]
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


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
        elif err["type"] == "value_error":
            msg = str(err["ctx"]["error"])  # our own wording, without pydantic's prefix
        elif err["loc"] and err["loc"][-1] in _TIMESTAMP_FIELDS:
            msg = f"{_TIMESTAMP_EXPECTED}; got {_shown(err['input'])}"
        elif err["type"] == "string_type" and where.endswith("Id") and err["input"] is not None:
            msg = f"{msg}; {_SEND_STRINGS}"
        out.append(Problem(f"{prefix}{where}", msg))
    return out


# -- the fast path -------------------------------------------------------------------------
# Most messages arrive with every declared field already in its final form: strings, JSON
# objects and ISO-8601 timestamps. Those are checked here directly, several times faster than
# through pydantic. Anything else, valid or not, returns None and goes through the models
# above, which alone write the error messages; tests/unit/events/test_schema.py checks that
# both paths give the same result.
_ID, _TS, _OBJ, _EVENT, _TEXT, _TYPE, _MID = range(7)
_BASE_FIELDS: Final = (
    ("messageId", _MID, False, False),
    ("timestamp", _TS, False, True),
    ("originalTimestamp", _TS, False, True),
    ("sentAt", _TS, False, True),
    ("userId", _ID, False, True),
    ("anonymousId", _ID, False, True),
    ("context", _OBJ, False, False),
    ("integrations", _OBJ, False, False),
    ("type", _TYPE, True, False),  # already checked: it chose these fields
)
# (field, kind, required, may be null), in the declaration order pydantic outputs them.
_FIELDS: Final[dict[str, tuple[tuple[str, int, bool, bool], ...]]] = {
    "track": (*_BASE_FIELDS, ("event", _EVENT, True, False), ("properties", _OBJ, False, False)),
    "identify": (*_BASE_FIELDS, ("traits", _OBJ, False, False)),
    "page": (
        *_BASE_FIELDS,
        ("name", _TEXT, False, True),
        ("category", _TEXT, False, True),
        ("properties", _OBJ, False, False),
    ),
    "group": (*_BASE_FIELDS, ("groupId", _ID, True, False), ("traits", _OBJ, False, False)),
    "alias": (*_BASE_FIELDS, ("previousId", _ID, True, False)),
}
_FIELDS["screen"] = _FIELDS["page"]
_DECLARED: Final = {kind: {f[0] for f in spec} for kind, spec in _FIELDS.items()}
_TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


_STR: Final = {str}


@lru_cache(maxsize=4096)
def _timestamp(text: str) -> datetime | None:
    """A strict ISO-8601 timestamp with a zone, or None (cached: a batch shares its sentAt)."""
    if not _TIMESTAMP.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _fast(raw: dict[Any, Any]) -> dict[str, Any] | None:
    """The validated message, or None when it needs the full validator (see above)."""
    kind = raw.get("type") if "type" in raw else None
    if type(kind) is not str or kind not in _FIELDS:
        return None
    out: dict[str, Any] = {}
    for name, check, required, nullable in _FIELDS[kind]:
        if name not in raw:
            if required:
                return None
            continue
        value = raw[name]
        if value is None:
            if not nullable:
                return None
            continue
        if type(value) is str:
            if check == _ID:
                if len(value) > 1024:
                    return None
            elif check == _MID:
                if not value or value.isspace() or len(value) > 1024:
                    return None
            elif check == _TS:
                value = _timestamp(value)
                if value is None:
                    return None
            elif check == _EVENT:
                if not 1 <= len(value) <= 512:
                    return None
            elif check not in (_TEXT, _TYPE):
                return None
        elif check != _OBJ or type(value) is not dict or not {*map(type, value)} <= _STR:
            return None  # (the models would turn numeric keys into strings)
        out[name] = value
    declared = _DECLARED[kind]
    for key, value in raw.items():
        if type(key) is not str:
            return None
        if value is not None and key not in declared:
            out[key] = value
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
    out = _fast(raw)
    if out is None:
        out = _validate_slowly(raw, prefix)
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


def _validate_slowly(raw: dict[Any, Any], prefix: str) -> dict[str, Any]:
    """The pydantic models: every shape the spec allows, and the error messages."""
    try:
        model = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = _problems(exc, prefix)
        raise InvalidInput(
            "message failed validation: " + "; ".join(f"{p.field} {p.message}" for p in problems),
            hint="fix the listed fields; the Segment spec is at https://segment.com/docs/connections/spec/",
            problems=problems,
        ) from None
    return {k: v for k, v in model.items() if v is not None}
