"""Who sees which variation: GrowthBook's ``run`` semantics, compiled once per experiment.

:class:`ExperimentSpec` is a GrowthBook experiment (the same JSON keys, so a definition can
move between personify and any GrowthBook SDK); :meth:`ExperimentSpec.from_growthbook`
reads one. :func:`run` decides, for one visitor (an :class:`AssignmentContext`), whether they
are in the experiment and which variation they get, in GrowthBook's order:

1. fewer than two variations, a disabled context: not in the experiment;
2. a ``?key=N`` query-string override, then ``forcedVariations``: forced (QA), no hash;
3. inactive or draft experiments: not in it;
4. no value for the hash attribute (nor its fallback): not in it;
5. a sticky assignment already stored for any of the visitor's ids: reuse it (and skip 6);
6. filters, else the namespace; the targeting condition (the segments' condition language,
   with saved groups); prerequisite features;
7. hash, bucket ranges (explicit ``ranges`` win over coverage and weights), variation;
8. outside the coverage: not in it; ``force`` on the experiment, QA mode, ``stopped``.

The result says whether the hash was used, which is what decides if an exposure is logged.

>>> spec = ExperimentSpec.from_growthbook({"key": "my-test", "variations": [0, 1]})
>>> result = run(spec, AssignmentContext(attributes={"id": "1"}))
>>> result.in_experiment, result.value, result.hash_used
(True, 1, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from personify.errors import InvalidInput, Problem
from personify.experiments.hashing import (
    Range,
    bucket_ranges,
    bucketer,
    gb_hash,
    in_namespace,
    in_range,
)
from personify.experiments.sticky import StickyStore
from personify.segments import Condition, compile_condition
from personify.segments.jsvalues import to_string, truthy


@dataclass(frozen=True)
class HashFilter:
    """A hash-range filter: the visitor is kept only if their hash falls in one of ``ranges``."""

    seed: str
    ranges: tuple[Range, ...]
    attribute: str = "id"
    hash_version: int = 2


@dataclass(frozen=True)
class ParentCondition:
    """A prerequisite: feature ``feature_id``'s value must satisfy ``condition``."""

    feature_id: str
    condition: Condition


@dataclass
class ExperimentSpec:
    """One experiment's assignment rules (GrowthBook's experiment object, in Python).

    Build it with :meth:`from_growthbook`, which validates and compiles everything once:
    the condition is compiled, the ranges computed and the seed's hash state cached, so
    :func:`run` does no parsing per visitor.
    """

    key: str
    variations: tuple[Any, ...]
    ranges: tuple[Range, ...]
    hash_attribute: str = "id"
    fallback_attribute: str | None = None
    hash_version: int = 1
    seed: str | None = None
    condition: Condition | None = None
    namespace: tuple[str, float, float] | None = None
    filters: tuple[HashFilter, ...] = ()
    force: int | None = None
    has_force: bool = False
    active: bool = True
    status: str = "running"
    parents: tuple[ParentCondition, ...] = ()
    bucket_version: int = 0
    variation_keys: tuple[str, ...] = field(default=())
    #: whether any filter, namespace, condition or prerequisite can exclude a visitor
    targeted: bool = field(init=False, default=False)
    #: ``gb_hash`` with this experiment's seed and version fixed (see ``hashing.bucketer``)
    bucket_of: Callable[[str], float | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.targeted = bool(self.filters or self.namespace or self.condition or self.parents)
        self.bucket_of = bucketer(
            self.seed if self.seed is not None else self.key, self.hash_version
        )

    @classmethod
    def from_growthbook(
        cls, raw: Mapping[str, Any], *, saved_groups: Mapping[str, Any] | None = None
    ) -> ExperimentSpec:
        """Validate and compile a GrowthBook experiment object.

        Raises :class:`InvalidInput` naming each bad field (with a hint), so a definition
        is rejected when it is loaded, never half-applied when a visitor arrives.
        """
        problems = _validate(raw)
        if problems:
            raise InvalidInput(
                f"experiment {raw.get('key')!r} is not valid",
                hint="fix the listed fields; see GrowthBook's experiment object for the shape",
                problems=problems,
            )
        variations = tuple(raw["variations"])
        if raw.get("ranges") is not None:
            ranges = tuple((float(a), float(b)) for a, b in raw["ranges"])
        else:
            ranges = tuple(
                bucket_ranges(len(variations), float(raw.get("coverage", 1.0)), raw.get("weights"))
            )
        condition = raw.get("condition")
        namespace = raw.get("namespace")
        meta = raw.get("meta") or []
        return cls(
            key=str(raw["key"]),
            variations=variations,
            ranges=ranges,
            hash_attribute=str(raw.get("hashAttribute") or "id"),
            fallback_attribute=raw.get("fallbackAttribute"),
            hash_version=int(raw.get("hashVersion") or 1),
            seed=raw.get("seed"),
            condition=compile_condition(condition, saved_groups=saved_groups)
            if condition
            else None,
            namespace=(str(namespace[0]), float(namespace[1]), float(namespace[2]))
            if namespace
            else None,
            filters=tuple(_filter(f) for f in raw.get("filters") or ()),
            force=raw.get("force"),
            has_force="force" in raw,
            active=raw.get("active", True) is not False,
            status=str(raw.get("status") or "running"),
            parents=tuple(
                ParentCondition(
                    str(p["id"]), compile_condition(p["condition"], saved_groups=saved_groups)
                )
                for p in raw.get("parentConditions") or ()
            ),
            bucket_version=int(raw.get("bucketVersion") or 0),
            variation_keys=tuple(
                str(m.get("key", i)) if isinstance(m, Mapping) else str(i)
                for i, m in enumerate(meta or [None] * len(variations))
            ),
        )

    @property
    def sticky_key(self) -> str:
        """The key under which sticky assignments of this experiment (and bucket version) live."""
        return f"{self.key}__{self.bucket_version}"


@dataclass
class AssignmentContext:
    """The visitor and the evaluation switches (GrowthBook's context)."""

    attributes: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    url: str = ""
    forced_variations: Mapping[str, int] = field(default_factory=dict)
    qa_mode: bool = False
    features: Mapping[str, Any] = field(default_factory=dict)
    sticky_store: StickyStore | None = None
    sticky_attributes: Sequence[str] = ()
    #: more ``(attribute, value)`` ids of the same visitor (e.g. the anonymous units a
    #: logged-in profile was seen as), read and written with the sticky assignment
    sticky_ids: Sequence[tuple[str, str]] = ()


@dataclass(slots=True)
class AssignmentResult:
    """What :func:`run` decided; ``hash_used`` is True only for a genuine, loggable assignment."""

    key: str
    in_experiment: bool
    variation_id: int
    value: Any
    hash_used: bool
    hash_attribute: str
    hash_value: str
    bucket: float | None = None
    sticky_used: bool = False


def _filter(raw: Mapping[str, Any]) -> HashFilter:
    return HashFilter(
        seed=str(raw["seed"]),
        ranges=tuple((float(a), float(b)) for a, b in raw["ranges"]),
        attribute=str(raw.get("attribute") or "id"),
        hash_version=int(raw.get("hashVersion") or 2),
    )


def _validate(raw: Mapping[str, Any]) -> list[Problem]:
    """Shape checks; GrowthBook's forgiving rules (bad weights -> equal split) still apply after."""
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        return [Problem("experiment", "must be an object")]
    if not isinstance(raw.get("key"), str) or not raw.get("key"):
        problems.append(Problem("key", "must be a non-empty string"))
    if not isinstance(raw.get("variations"), list | tuple):
        problems.append(Problem("variations", "must be a list of variation values"))
    for name in ("coverage",):
        value = raw.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(Problem(name, "must be a number between 0 and 1"))
    weights = raw.get("weights")
    if weights is not None and (
        not isinstance(weights, list | tuple)
        or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)
    ):
        problems.append(Problem("weights", "must be a list of numbers summing to 1"))
    ranges = raw.get("ranges")
    if ranges is not None and not all(isinstance(r, list | tuple) and len(r) == 2 for r in ranges):
        problems.append(Problem("ranges", "must be a list of [start, end) pairs"))
    namespace = raw.get("namespace")
    if namespace is not None and not (isinstance(namespace, list | tuple) and len(namespace) == 3):
        problems.append(Problem("namespace", "must be [name, start, end]"))
    condition = raw.get("condition")
    if condition is not None and not isinstance(condition, Mapping):
        problems.append(Problem("condition", "must be a condition object"))
    for name in ("seed", "hashAttribute", "fallbackAttribute"):
        if raw.get(name) is not None and not isinstance(raw.get(name), str):
            problems.append(Problem(name, "must be a string"))
    return problems


def attribute_value(attributes: Mapping[str, Any], name: str) -> Any:
    """An attribute by name; a dotted name (``traits.company``) walks nested objects.

    GrowthBook's hash attributes are top-level names; personify's visitors carry traits under
    ``traits``, so a dotted path is followed when no top-level key has that exact name.
    """
    value = attributes.get(name)
    if value is None and "." in name:
        node: Any = attributes
        for step in name.split("."):
            node = node.get(step) if isinstance(node, Mapping) else None
        value = node
    return value


def _hash_value(
    spec_attribute: str, fallback: str | None, attributes: Mapping[str, Any]
) -> tuple[str, str]:
    """The attribute used for hashing and its string value ('' when absent or falsy, as in JS)."""
    value = attribute_value(attributes, spec_attribute)
    if value.__class__ is str and value:
        return spec_attribute, value
    if truthy(value):
        return spec_attribute, to_string(value)
    if fallback:
        value = attribute_value(attributes, fallback)
        if truthy(value):
            return fallback, to_string(value)
    return spec_attribute, ""


def query_string_override(key: str, url: str, count: int) -> int | None:
    """GrowthBook's ``?<key>=<n>`` override: the forced index, or None if absent or out of range."""
    if not url:
        return None
    query = urlsplit(url).query
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == key:
            try:
                index = int(value)
            except ValueError:
                return None
            return index if 0 <= index < count else None
    return None


def _result(
    spec: ExperimentSpec,
    index: int,
    *,
    hash_used: bool,
    attribute: str = "",
    hash_value: str = "",
    bucket: float | None = None,
    sticky_used: bool = False,
) -> AssignmentResult:
    in_experiment = 0 <= index < len(spec.variations)
    if not in_experiment:
        index = 0
    return AssignmentResult(
        key=spec.key,
        in_experiment=in_experiment,
        variation_id=index,
        value=spec.variations[index] if spec.variations else None,
        hash_used=hash_used and in_experiment,
        hash_attribute=attribute or spec.hash_attribute,
        hash_value=hash_value,
        bucket=bucket,
        sticky_used=sticky_used,
    )


def _feature_value(
    features: Mapping[str, Any], feature_id: str, attributes: Mapping[str, Any]
) -> Any:
    """A prerequisite feature's value: its first matching ``force`` rule, else its default.

    Only ``force`` rules (with an optional condition) are evaluated; experiment rules inside a
    prerequisite feature are not, which is enough for gating experiments on flags.
    """
    feature = features.get(feature_id)
    if not isinstance(feature, Mapping):
        return None
    for rule in feature.get("rules") or ():
        if "force" in rule and (
            not rule.get("condition") or compile_condition(rule["condition"])(attributes)
        ):
            return rule["force"]
    return feature.get("defaultValue")


def _targeted_out(spec: ExperimentSpec, ctx: AssignmentContext, hash_value: str) -> bool:
    """Filters (or namespace), condition and prerequisites: True when the visitor is excluded."""
    attributes = ctx.attributes
    if spec.filters:
        for flt in spec.filters:
            _, value = _hash_value(flt.attribute, None, attributes)
            n = gb_hash(flt.seed, value, flt.hash_version) if value else None
            if n is None or not any(in_range(n, r) for r in flt.ranges):
                return True
    elif spec.namespace is not None and not in_namespace(hash_value, spec.namespace):
        return True
    if spec.condition is not None and not spec.condition(attributes):
        return True
    return any(
        not parent.condition({"value": _feature_value(ctx.features, parent.feature_id, attributes)})
        for parent in spec.parents
    )


def _sticky_lookup(
    spec: ExperimentSpec, ctx: AssignmentContext, ids: list[tuple[str, str]]
) -> int | None:
    if ctx.sticky_store is None:
        return None
    found = ctx.sticky_store.lookup(ids, spec.sticky_key)
    if found is None or not 0 <= found < len(spec.variations):
        return None
    return found


def _visitor_ids(
    spec: ExperimentSpec, ctx: AssignmentContext, attribute: str
) -> list[tuple[str, str]]:
    """Every (attribute, value) the visitor is known by (hashing one first), for sticky lookups."""
    names = [attribute, spec.hash_attribute]
    if spec.fallback_attribute:
        names.append(spec.fallback_attribute)
    names.extend(ctx.sticky_attributes)
    ids: list[tuple[str, str]] = []
    for name in dict.fromkeys(names):
        value = attribute_value(ctx.attributes, name)
        if truthy(value):
            ids.append((name, to_string(value)))
    ids.extend(i for i in ctx.sticky_ids if i not in ids)
    return ids


def run(spec: ExperimentSpec, ctx: AssignmentContext) -> AssignmentResult:
    """Assign one visitor to a variation following GrowthBook's ``run`` (see the module doc)."""
    count = len(spec.variations)
    if count < 2 or not ctx.enabled:
        return _result(spec, -1, hash_used=False)
    forced = query_string_override(spec.key, ctx.url, count) if ctx.url else None
    if forced is not None:
        return _result(spec, forced, hash_used=False)
    if ctx.forced_variations and spec.key in ctx.forced_variations:
        return _result(spec, int(ctx.forced_variations[spec.key]), hash_used=False)
    if spec.status == "draft" or not spec.active:
        return _result(spec, -1, hash_used=False)
    attribute = spec.hash_attribute
    hash_value = ctx.attributes.get(attribute)
    if hash_value.__class__ is not str or not hash_value:  # the common case is a plain id
        attribute, hash_value = _hash_value(attribute, spec.fallback_attribute, ctx.attributes)
        if not hash_value:
            return _result(spec, -1, hash_used=False)
    store = ctx.sticky_store
    ids = _visitor_ids(spec, ctx, attribute) if store is not None else []
    sticky = _sticky_lookup(spec, ctx, ids) if store is not None else None
    if sticky is None and spec.targeted and _targeted_out(spec, ctx, hash_value):
        return _result(spec, -1, hash_used=False, attribute=attribute, hash_value=hash_value)
    n = spec.bucket_of(hash_value)
    if n is None:
        return _result(spec, -1, hash_used=False, attribute=attribute, hash_value=hash_value)
    if sticky is not None:
        assigned = sticky
    else:
        assigned = -1
        for index, (start, end) in enumerate(spec.ranges):
            if start <= n < end:
                assigned = index
                break
    if assigned < 0:
        return _result(spec, -1, hash_used=False, attribute=attribute, hash_value=hash_value)
    if spec.has_force:
        return _result(spec, -1 if spec.force is None else spec.force, hash_used=False)
    if ctx.qa_mode or spec.status == "stopped":
        return _result(spec, -1, hash_used=False, attribute=attribute, hash_value=hash_value)
    if store is not None:
        store.remember(ids, spec.sticky_key, assigned)
    return AssignmentResult(
        spec.key,
        True,
        assigned,
        spec.variations[assigned],
        True,
        attribute,
        hash_value,
        n,
        sticky is not None,
    )
