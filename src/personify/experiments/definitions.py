"""Experiment definitions (kind ``experiment``): A/B/n, multivariate, holdouts and bandits.

::

    experiments:
      hero_test:
        placement: home_hero
        type: ab                      # ab | multivariate | bandit
        status: running               # draft | running | stopped | shipped
        variants:                     # the first variant is the control
          - {key: control, content: welcome_banner}
          - {key: loyalty, content: loyalty_picks, weight: 0.5}
          - {key: ranked, policy: ranking}        # a whole strategy as a variant
        hash_attribute: id            # the unit: id (the person), user_id, anonymous_id, traits.x
        coverage: 1.0                 # share of eligible traffic in the test
        namespace: [hero, 0, 0.5]     # mutually exclusive with tests using [hero, 0.5, 1]
        condition: {"computed.orders": {"$gte": 1}}
        metrics: {primary: conversion, guardrails: [revenue_per_user]}
        shipped: loyalty              # with status shipped: everyone gets this variant

``type: holdout`` is a global holdout: ``share`` of the units (say 0.05) is held out and sees
only placement defaults wherever a rule ``use: <key>`` comes first; its groups are
``holdout`` (the control) and ``personalized``, so the report measures personalization as a
whole. ``type: multivariate`` takes ``factors`` instead of ``variants`` (every combination is a
variant; ``content`` is a template such as ``hero_{headline}_{image}``). ``type: bandit``
adds ``algorithm`` (``thompson``, ``gaussian_thompson``, ``epsilon_greedy``, ``ucb1``,
``linucb``), ``min_weight``, ``burn_in`` and, for LinUCB, ``features``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from personify.errors import InvalidInput, Problem
from personify.experiments.assignment import ExperimentSpec
from personify.segments import validate_condition

TYPES: Final = ("ab", "multivariate", "bandit", "holdout")
STATUSES: Final = ("draft", "running", "stopped", "shipped")
ALGORITHMS: Final = ("thompson", "gaussian_thompson", "epsilon_greedy", "ucb1", "linucb")
_KEYS: Final = {
    "placement",
    "type",
    "status",
    "variants",
    "factors",
    "content",
    "hash_attribute",
    "fallback_attribute",
    "hash_version",
    "coverage",
    "namespace",
    "condition",
    "metrics",
    "shipped",
    "algorithm",
    "min_weight",
    "burn_in",
    "epsilon",
    "features",
    "description",
    "reward",
    "share",
}


@dataclass(frozen=True)
class VariantDef:
    """One arm: the content it shows, or the policy (strategy) it hands the decision to."""

    key: str
    weight: float
    content: str | None = None
    policy: str | None = None


@dataclass(frozen=True)
class ExperimentDef:
    """A validated experiment definition, ready to serve."""

    key: str
    placement: str
    type: str
    status: str
    variants: tuple[VariantDef, ...]
    spec: ExperimentSpec
    metrics: Mapping[str, Any] = field(default_factory=dict)
    shipped: str | None = None
    algorithm: str = "thompson"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def control(self) -> VariantDef:
        return self.variants[0]

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(v.weight for v in self.variants)

    def variant(self, key: str) -> VariantDef:
        for v in self.variants:
            if v.key == key:
                return v
        raise InvalidInput(
            f"experiment {self.key!r} has no variant {key!r}",
            hint=f"use one of: {', '.join(v.key for v in self.variants)}",
            problems=[Problem("variant", "unknown")],
        )


def _variant_problems(raw: Any, where: str) -> list[Problem]:
    if not isinstance(raw, Mapping):
        return [Problem(where, "a variant is a mapping with a key and content or policy")]
    problems = []
    if not isinstance(raw.get("key"), str) or not raw["key"]:
        problems.append(Problem(f"{where}.key", "give each variant a key"))
    if ("content" in raw) == ("policy" in raw):
        problems.append(Problem(where, "give exactly one of content (a content key) or policy"))
    weight = raw.get("weight")
    if weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0
    ):
        problems.append(Problem(f"{where}.weight", "must be a non-negative number"))
    unknown = set(raw) - {"key", "content", "policy", "weight"}
    problems.extend(Problem(f"{where}.{k}", "unknown field") for k in sorted(unknown))
    return problems


def _expand_factors(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Multivariate: every combination of the factor levels becomes a variant."""
    factors = body.get("factors")
    template = body.get("content")
    if (
        not isinstance(factors, Mapping)
        or not factors
        or not all(isinstance(levels, list) and levels for levels in factors.values())
    ):
        return [], [Problem("factors", "map each factor to a non-empty list of levels")]
    if not isinstance(template, str) or not all("{" + f + "}" in template for f in factors):
        return [], [
            Problem(
                "content", "give a content key template naming every factor, e.g. hero_{headline}"
            )
        ]
    names = list(factors)
    variants = []
    for levels in itertools.product(*(factors[n] for n in names)):
        values = dict(zip(names, (str(level) for level in levels), strict=True))
        key = "|".join(f"{n}={values[n]}" for n in names)
        variants.append({"key": key, "content": template.format(**values)})
    return variants, []


def _holdout(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """A global holdout: two groups, held out (the control) and personalized."""
    share = body.get("share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        return [], [Problem("share", "give the held-out share, a number between 0 and 1 (0.05)")]
    if "variants" in body:
        return [], [Problem("variants", "a holdout has fixed groups: holdout and personalized")]
    return [
        {"key": "holdout", "weight": float(share)},
        {"key": "personalized", "weight": 1 - float(share)},
    ], []


def _variants(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[Problem]]:
    if body.get("type") == "multivariate":
        return _expand_factors(body)
    if body.get("type") == "holdout":
        return _holdout(body)
    raw = body.get("variants")
    if not isinstance(raw, list) or len(raw) < 2:
        return [], [Problem("variants", "give at least two variants (the first is the control)")]
    problems = [p for i, v in enumerate(raw) for p in _variant_problems(v, f"variants[{i}]")]
    keys = [v.get("key") for v in raw if isinstance(v, Mapping)]
    if len(set(keys)) != len(keys):
        problems.append(Problem("variants", "variant keys must be unique"))
    return [dict(v) for v in raw if isinstance(v, Mapping)], problems


def check_experiment(key: str, body: Any) -> list[Problem]:
    """Every problem with an experiment definition (fields relative to the entry)."""
    if not isinstance(body, Mapping):
        return [Problem("", "an experiment is a mapping with placement and variants")]
    problems = [
        Problem(k, f"unknown field; allowed: {', '.join(sorted(_KEYS))}")
        for k in body
        if k not in _KEYS
    ]
    kind = body.get("type", "ab")
    if not isinstance(body.get("placement", "*" if kind == "holdout" else None), str):
        problems.append(Problem("placement", "name the placement the experiment runs on"))
    if kind not in TYPES:
        problems.append(Problem("type", f"{kind!r} is not a type; use one of {TYPES}"))
    status = body.get("status", "draft")
    if status not in STATUSES:
        problems.append(Problem("status", f"{status!r} is not a status; use one of {STATUSES}"))
    variants, found = _variants(body)
    problems += found
    keys = [v.get("key") for v in variants]
    if status == "shipped" and body.get("shipped") not in keys:
        shipped = body.get("shipped")
        named = "names no variant" if shipped is None else f"{shipped!r} is not a variant"
        problems.append(
            Problem(
                "shipped",
                f"a shipped experiment names the variant everyone gets; {named}, use one of: "
                + ", ".join(str(k) for k in keys),
            )
        )
    if kind == "bandit":
        if body.get("algorithm", "thompson") not in ALGORITHMS:
            problems.append(Problem("algorithm", f"use one of {ALGORITHMS}"))
        if body.get("algorithm") == "linucb" and not body.get("features"):
            problems.append(Problem("features", "LinUCB needs feature names"))
        if any("policy" in v for v in variants):
            problems.append(Problem("variants", "bandit arms are content keys, not policies"))
    coverage = body.get("coverage", 1.0)
    if (
        isinstance(coverage, bool)
        or not isinstance(coverage, int | float)
        or not 0 <= coverage <= 1
    ):
        problems.append(Problem("coverage", "must be a number between 0 and 1"))
    namespace = body.get("namespace")
    if namespace is not None and not (
        isinstance(namespace, list)
        and len(namespace) == 3
        and isinstance(namespace[0], str)
        and all(isinstance(x, int | float) for x in namespace[1:])
        and 0 <= namespace[1] < namespace[2] <= 1
    ):
        problems.append(
            Problem("namespace", "must be [name, start, end] with 0 <= start < end <= 1")
        )
    if body.get("hash_version", 2) not in (1, 2):
        problems.append(Problem("hash_version", "must be 1 or 2"))
    if body.get("condition") is not None:
        problems += [
            Problem(f"condition.{p.field}".rstrip("."), p.message)
            for p in validate_condition(body["condition"])
        ]
    return problems


def _weights(variants: list[dict[str, Any]]) -> list[float]:
    given = [v.get("weight") for v in variants]
    if all(w is None for w in given):
        return [1 / len(variants)] * len(variants)
    raw = [float(w) if w is not None else 0.0 for w in given]
    missing = [i for i, w in enumerate(given) if w is None]
    rest = max(0.0, 1 - sum(raw))
    for i in missing:
        raw[i] = rest / len(missing)
    total = sum(raw)
    return [w / total for w in raw] if total > 0 else [1 / len(raw)] * len(raw)


def compile_experiment(key: str, body: Mapping[str, Any]) -> ExperimentDef:
    """Validate and compile; raises :class:`InvalidInput` listing every problem."""
    problems = check_experiment(key, body)
    if problems:
        raise InvalidInput(
            f"experiment {key!r} is not valid",
            hint="fix the listed fields (see personify.experiments.definitions for the shape)",
            problems=problems,
        )
    variants, _ = _variants(body)
    weights = _weights(variants)
    defs = tuple(
        VariantDef(str(v["key"]), w, v.get("content"), v.get("policy"))
        for v, w in zip(variants, weights, strict=True)
    )
    spec = ExperimentSpec.from_growthbook(
        {
            "key": key,
            "variations": [v.key for v in defs],
            "weights": list(weights),
            "coverage": body.get("coverage", 1.0),
            "hashAttribute": body.get("hash_attribute", "id"),
            "fallbackAttribute": body.get("fallback_attribute"),
            "hashVersion": body.get("hash_version", 2),
            "namespace": body.get("namespace"),
            "condition": body.get("condition"),
            "status": "running" if body.get("status") in ("running", "shipped") else "stopped",
        }
    )
    options = {
        name: body[name]
        for name in ("min_weight", "burn_in", "epsilon", "features", "reward")
        if name in body
    }
    return ExperimentDef(
        key=key,
        placement=str(body.get("placement", "*")),
        type=str(body.get("type", "ab")),
        status=str(body.get("status", "draft")),
        variants=defs,
        spec=spec,
        metrics=dict(body.get("metrics") or {}),
        shipped=body.get("shipped"),
        algorithm=str(body.get("algorithm", "thompson")),
        options=options,
    )
