"""Segment definitions: validated when saved, compiled once, evaluated per profile.

A definition is a small JSON/YAML document, stored versioned (kind ``"segment"``) in the
definition store::

    key: cart_abandoner                 # [a-z][a-z0-9_]*, at most 64 characters
    name: Cart abandoners
    description: Added to cart, no order within 24 hours
    kind: dynamic                       # membership follows the condition
    condition: {"$sequence": {...}}

    key: beta_testers
    kind: static                        # an uploaded or frozen list
    members: {"user_id": ["u1", "u2"], "email": ["a@example.com"], "profile_id": [...]}

Validation rejects, with a pointer to the offending part: unknown operators, malformed windows,
paths no profile can have (``computed.revnue``), type mismatches (``computed.orders`` compared
with a string or a regex), request-only ``context`` paths, and unknown segment references.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from personify.errors import InvalidInput, Problem
from personify.segments.behavior import FLAG_ROOT, Clause, RelativeTime, parse
from personify.segments.conditions import Condition, compile_condition
from personify.segments.document import ROOTS
from personify.segments.validation import describe, validate_condition

KIND: Final = "segment"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
STATIC_IDENTITIES: Final = ("profile_id", "user_id", "email", "anonymous_id", "phone")
NUMBER_FIELDS: Final = (
    "orders", "revenue", "refunds", "refunded", "sessions", "average_order_value",
)  # fmt: skip
TIME_FIELDS: Final = ("first_seen", "last_seen", "first_order_at", "last_order_at")
COMPUTED_FIELDS: Final = (*NUMBER_FIELDS, *TIME_FIELDS, "event_counts", "lifecycle_stage")
_NUMERIC_OPS: Final = ("$gt", "$gte", "$lt", "$lte", "$eq", "$ne")


@dataclass
class Segment:
    """A compiled segment: call :meth:`matches` with a condition document and the flags."""

    key: str
    name: str
    kind: str
    version: int
    body: dict[str, Any]
    condition: Condition | None
    clauses: dict[str, Clause] = field(default_factory=dict)
    static: dict[str, frozenset[str]] = field(default_factory=dict)
    uses_segments: bool = False
    # What can change the answer: profile fields ("computed.orders", "traits", "scores") and
    # the behavioural clauses; anything else about a profile's events cannot.
    deps: frozenset[str] = frozenset()
    # Reads only event clauses (no profile field): then with no event state at all the
    # answer is ``empty_answer`` whatever the profile or the time.
    behavioural: bool = False
    empty_answer: bool = False
    # The states the clauses read (clauses that keep the same state share one).
    state_ids: frozenset[str] = frozenset()
    # The whole condition is this one clause being true (most behavioural segments): the
    # engine then asks the clause, without the flags document.
    only: Clause | None = None
    # Whether answering reads the condition document (profile fields, or identities for a
    # static segment); a segment that reads only event clauses' states does not, nor one
    # whose only clause reads a ``computed`` time, the same in the stored profile.
    reads_doc: bool = True
    # The bare compiled condition, when it reads profile fields only (no clause, not static).
    test: Callable[[Mapping[str, Any]], bool] | None = None

    def matches(self, doc: Mapping[str, Any], identities: Mapping[str, list[str]]) -> bool:
        if self.kind == "static":
            if doc.get("profile_id") in self.static.get("profile_id", frozenset()):
                return True
            return any(
                value in self.static.get(kind, frozenset())
                for kind, values in identities.items()
                for value in values
            )
        assert self.condition is not None
        return self.condition(doc)


def _known_path(path: str) -> bool:
    root, _, rest = path.partition(".")
    if root == "computed":
        head = rest.split(".")[0]
        return not rest or head in COMPUTED_FIELDS
    return (root in ROOTS and root != "context") or root == FLAG_ROOT


def _type_problems(condition: Any, where: str = "") -> list[Problem]:
    """Comparisons that can never match because of the field's type."""
    problems: list[Problem] = []
    if isinstance(condition, list):
        for i, item in enumerate(condition):
            problems += _type_problems(item, f"{where}[{i}]")
        return problems
    if not isinstance(condition, Mapping):
        return problems
    for key, value in condition.items():
        at = f"{where}.{key}" if where else str(key)
        if key in ("$and", "$or", "$nor", "$not"):
            problems += _type_problems(value, at)
            continue
        if not isinstance(key, str) or not key.startswith("computed."):
            continue
        name = key.split(".", 1)[1]
        ops = value if isinstance(value, Mapping) else {"$eq": value}
        for op, operand in ops.items():
            if name in NUMBER_FIELDS:
                if op in ("$regex", "$regexi"):
                    problems.append(
                        Problem(
                            f"{at}.{op}",
                            f"{key} is a number; a regex never "
                            "matches it — compare with $gt/$lt instead",
                        )
                    )
                elif op in _NUMERIC_OPS and isinstance(operand, str):
                    problems.append(
                        Problem(
                            f"{at}.{op}",
                            f"{key} is a number; compare it with a number, not {describe(operand)}",
                        )
                    )
            elif (
                name in TIME_FIELDS
                and op in _NUMERIC_OPS
                and not (isinstance(operand, str) or operand is None)
            ):
                problems.append(
                    Problem(
                        f"{at}.{op}",
                        f"{key} is an ISO timestamp; compare it "
                        'with a date text or use {"$olderThan": "30d"}',
                    )
                )
    return problems


def segment_refs(condition: Any) -> set[str]:
    """Segment keys a condition names through the ``segments`` path."""
    refs: set[str] = set()

    def walk(node: Any, under_segments: bool) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, under_segments or key == "segments")
        elif isinstance(node, list):
            for item in node:
                walk(item, under_segments)
        elif under_segments and isinstance(node, str):
            refs.add(node)

    walk(condition, False)
    return refs


def validate(body: Any, known_segments: set[str] | None = None) -> list[Problem]:
    """Every problem with a segment definition (empty: it can be saved)."""
    if not isinstance(body, Mapping):
        return [
            Problem(
                "(segment)",
                f"a segment is an object with key, name, kind and condition; got {describe(body)}",
            )
        ]
    problems: list[Problem] = []
    key = body.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        problems.append(
            Problem(
                "key",
                "a key is lower-case letters, digits and _ starting with "
                f"a letter, at most 64 characters (e.g. cart_abandoner); got "
                f"{describe(key)}",
            )
        )
    unknown = set(body) - {"key", "name", "description", "kind", "condition", "members", "tags"}
    if unknown:
        problems.append(
            Problem(
                "(segment)",
                f"unknown field(s) {sorted(unknown)}; a segment "
                "has key, name, description, kind, condition, members, tags",
            )
        )
    for text_field in ("name", "description"):
        if text_field in body and not isinstance(body[text_field], str):
            problems.append(Problem(text_field, f"must be text; got {describe(body[text_field])}"))
    kind = body.get("kind", "dynamic")
    if kind not in ("dynamic", "static"):
        problems.append(Problem("kind", f'kind is "dynamic" or "static"; got {describe(kind)}'))
    elif kind == "dynamic":
        if "members" in body:
            problems.append(
                Problem(
                    "members",
                    'only a static segment has members; use kind: static or remove "members"',
                )
            )
        if "condition" not in body:
            problems.append(
                Problem(
                    "condition",
                    'a dynamic segment needs a condition, e.g. {"computed.orders": {"$gte": 1}}',
                )
            )
        else:
            problems += condition_problems(body["condition"], known_segments)
    else:
        if "condition" in body:
            problems.append(
                Problem(
                    "condition",
                    "a static segment has members, not a "
                    "condition; use kind: dynamic for a condition",
                )
            )
        members = body.get("members")
        if not isinstance(members, Mapping) or not members:
            problems.append(
                Problem(
                    "members",
                    "a static segment lists its members by identity, "
                    'e.g. {"user_id": ["u1"], "email": ["a@example.com"]}',
                )
            )
        else:
            for ident, values in members.items():
                if ident not in STATIC_IDENTITIES:
                    problems.append(
                        Problem(
                            f"members.{ident}",
                            "unknown identity; use one of " + ", ".join(STATIC_IDENTITIES),
                        )
                    )
                elif not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    problems.append(Problem(f"members.{ident}", "needs a list of strings"))
    return problems


def condition_problems(condition: Any, known_segments: set[str] | None = None) -> list[Problem]:
    """Problems with a segment condition, fields prefixed with ``condition``."""
    parsed = parse(condition, "condition")
    problems = list(parsed.problems)
    if not problems:
        for p in validate_condition(parsed.condition, known_paths=_known_path):
            message = p.message
            if p.field.split(".")[0] == "context" or ".context" in p.field:
                message = "context is only known at decision time; segments read the profile"
            problems.append(Problem(f"condition.{p.field}", message))
        problems += [Problem(f"condition.{p.field}", p.message) for p in _type_problems(condition)]
    if known_segments is not None:
        for ref in sorted(segment_refs(condition) - known_segments):
            problems.append(
                Problem(
                    "condition.segments", f"unknown segment {ref!r}; create it first or fix the key"
                )
            )
    return problems


def compile_segment(body: Mapping[str, Any], version: int = 0) -> Segment:
    """Validate and compile (raises InvalidInput listing every problem)."""
    problems = validate(body)
    if problems:
        raise InvalidInput(
            f"invalid segment: {problems[0].field}: {problems[0].message}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            hint="fix each listed problem and save again",
            problems=problems,
        )
    kind = body.get("kind", "dynamic")
    common = {
        "key": body["key"],
        "name": body.get("name") or body["key"],
        "kind": kind,
        "version": version,
        "body": dict(body),
    }
    if kind == "static":
        members = {k: frozenset(v) for k, v in body["members"].items()}
        return Segment(condition=None, static=members, **common)
    parsed = parse(body["condition"])
    condition = compile_condition(parsed.condition)
    deps = _dependencies(condition.paths, parsed.clauses)
    behavioural = (
        bool(parsed.clauses)
        and not deps
        and all(not isinstance(c, RelativeTime) for c in parsed.clauses.values())
    )
    empty = False
    if behavioural:
        flags = {cid: c.holds(None, {}, EPOCH) for cid, c in parsed.clauses.items()}
        empty = condition({FLAG_ROOT: flags})
    only: Clause | None = None
    if len(parsed.clauses) == 1:
        ((cid, clause),) = parsed.clauses.items()
        if parsed.condition == {f"{FLAG_ROOT}.{cid}": True}:
            only = clause
    return Segment(
        condition=condition,
        clauses=parsed.clauses,
        only=only,
        reads_doc=only is None or (isinstance(only, RelativeTime) and only.path[0] != "computed"),
        test=None if parsed.clauses else condition.predicate,
        uses_segments=bool(segment_refs(body["condition"])),
        deps=deps,
        behavioural=behavioural,
        empty_answer=empty,
        state_ids=frozenset(c.state_id for c in parsed.clauses.values()),
        **common,
    )


def _dependencies(paths: frozenset[str], clauses: Mapping[str, Clause]) -> frozenset[str]:
    deps: set[str] = set()
    for path in paths:
        parts = path.split(".")
        if parts[0] == FLAG_ROOT and len(parts) > 1 and parts[1] in clauses:
            clause = clauses[parts[1]]
            if isinstance(clause, RelativeTime):
                deps.add(
                    ".".join(clause.path[:2]) if clause.path[0] == "computed" else clause.path[0]
                )
        elif parts[0] == "computed":
            deps.add(".".join(parts[:2]))
        elif parts[0] in ("traits", "scores", "consent", "segments"):
            deps.add(parts[0])
    return frozenset(deps)


def evaluate_at(
    segment: Segment,
    doc: dict[str, Any],
    identities: Mapping[str, list[str]],
    states: Mapping[str, dict[str, Any]],
    now: datetime,
) -> bool:
    """Whether a profile is in the segment at ``now`` (clause states by state id)."""
    if not segment.clauses:
        return segment.matches(doc, identities)
    doc[FLAG_ROOT] = {
        cid: clause.holds(states.get(clause.state_id), doc, now)
        for cid, clause in segment.clauses.items()
    }
    return segment.matches(doc, identities)


def judge(
    segment: Segment,
    doc: dict[str, Any],
    identities: Mapping[str, list[str]],
    states: Mapping[str, dict[str, Any]],
    now: datetime,
) -> tuple[bool, datetime | None]:
    """:func:`evaluate_at`, and the earliest moment after ``now`` when any of the segment's
    clauses may change its answer with no new event (None: none will).

    When ``segment.reads_doc`` is false, ``doc`` may be the stored profile instead.
    """
    only = segment.only
    if only is not None:
        return only.judge(states.get(only.state_id), doc, now)
    if segment.test is not None:
        return segment.test(doc), None
    if not segment.clauses:
        return segment.matches(doc, identities), None
    flags: dict[str, bool] = {}
    due: datetime | None = None
    for cid, clause in segment.clauses.items():
        flags[cid], moment = clause.judge(states.get(clause.state_id), doc, now)
        if moment is not None and (due is None or moment < due):
            due = moment
    doc[FLAG_ROOT] = flags
    return segment.matches(doc, identities), due
