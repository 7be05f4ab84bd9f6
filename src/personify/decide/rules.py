"""Decision rules: an ordered, versioned list per placement (kind ``rule_set``).

Each rule is a condition in the segments' condition language, evaluated against the condition
document (traits, computed traits, segments, model scores, request context), and one outcome::

    - id: retention_offer                     # unique in the list; reported in reasons
      description: churn risk and away for two weeks
      when: {"scores.churn": {"$gt": 0.7}, "computed.days_since_last_seen": {"$gte": 14}}
      show: winback_offer                     # show this candidate
    - id: loyal_picks
      when: {"computed.orders": {"$gte": 3}}
      rank: {score: "scores.affinity.{category}", among: [shoes_block, home_block]}
    - id: night_owls
      when: {"context.local_hour": {"$lt": 6}}
      next: true                              # go on to the next rule ...
      exclude: [flash_sale]                   # ... without these candidates
    - id: hero_test
      use: hero_experiment                    # hand over to a registered policy

``when`` may be left out (always true). Rules are compiled once per version, so a request
only calls precompiled predicates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

from personify.decide.policies.ranking import PLACEHOLDER, ScoreRanking, fill_path
from personify.definitions.records import KEY_PATTERN
from personify.errors import Problem
from personify.segments import Condition, compile_condition, validate_condition
from personify.segments.document import ROOTS
from personify.segments.validation import ROOT

MAX_RULES: Final = 200
OUTCOMES: Final = ("show", "rank", "next", "use")
_RULE_KEYS: Final = {"id", "description", "when", "exclude", "among", *OUTCOMES}
_RANK_KEYS: Final = {"score", "scorer", "min_score", "label"}
_POLICY_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]{0,127}")


def known_path(path: str) -> bool:
    """Condition paths must start at a root of the condition document."""
    return path.split(".", 1)[0] in ROOTS


@dataclass(frozen=True)
class Show:
    content: str


@dataclass(frozen=True)
class Rank:
    score: str | None
    scorer: str | None
    min_score: float | None
    label: str


@dataclass(frozen=True)
class Next:
    exclude: tuple[str, ...]


@dataclass(frozen=True)
class Use:
    policy: str


PRIVATE_ROOTS: Final = ("traits", "consent")
Outcome = Show | Rank | Next | Use
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    when: Condition | None
    outcome: Outcome
    among: tuple[str, ...] | None
    #: for ``rank`` with score paths: the policy, with each candidate's path precompiled
    ranking: ScoreRanking | None = None

    @cached_property
    def fact_paths(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The paths ``when`` reads that a reason may show, sorted, each with its steps:
        trait and consent values are left out, as they may be personal data and reasons go
        back to the (public) caller."""
        paths = sorted(self.when.paths) if self.when is not None else []
        return tuple((p, tuple(p.split("."))) for p in paths if not p.startswith(PRIVATE_ROOTS))


@dataclass(frozen=True)
class RuleSet:
    placement: str
    version: int
    rules: tuple[Rule, ...]

    @cached_property
    def steps(self) -> tuple[tuple[Predicate | None, Rule], ...]:
        """Each rule with its bare compiled predicate, for the tightest loop."""
        return tuple((r.when.predicate if r.when else None, r) for r in self.rules)


def rules_of(body: object) -> object:
    """The rule list of a stored body ``{"rules": [...]}`` or of a bare YAML list."""
    if isinstance(body, Mapping) and set(body) == {"rules"}:
        return body["rules"]
    return body


def _keys_in(value: object, allowed: Sequence[str], where: str) -> list[Problem]:
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        return [Problem(where, "must be a list of content keys")]
    return [
        Problem(f"{where}[{i}]", f"{k!r} is not a candidate of this placement")
        for i, k in enumerate(value)
        if k not in allowed
    ]


def _check_condition(when: object, where: str) -> list[Problem]:
    found = validate_condition(when, known_paths=known_path)
    out = []
    for p in found:
        field = where if p.field in ("", ROOT) else f"{where}.{p.field}"
        message = p.message
        if message.startswith("unknown attribute"):
            message += f" (paths start with one of: {', '.join(ROOTS)})"
        out.append(Problem(field, message))
    return out


def _check_rank(
    rank: object,
    where: str,
    content: Callable[[str], Mapping[str, Any] | None],
    among: Sequence[str],
) -> list[Problem]:
    if not isinstance(rank, Mapping):
        return [Problem(where, 'rank needs {"score": "scores.<path>"} or {"scorer": "<name>"}')]
    problems = [
        Problem(f"{where}.{k}", f"unknown field; allowed: {', '.join(sorted(_RANK_KEYS))}")
        for k in rank
        if k not in _RANK_KEYS
    ]
    score, scorer = rank.get("score"), rank.get("scorer")
    if (score is None) == (scorer is None):
        problems.append(Problem(where, 'give exactly one of "score" (a path) or "scorer"'))
    if score is not None:
        if not isinstance(score, str) or not known_path(score):
            problems.append(
                Problem(f"{where}.score", f"must be a path starting with one of {ROOTS}")
            )
        else:
            for name in PLACEHOLDER.findall(score):
                for key in among:
                    body = content(key) or {}
                    if name != "key" and name not in (body.get("attributes") or {}):
                        problems.append(
                            Problem(
                                f"{where}.score",
                                f"candidate {key!r} has no attribute {name!r} for {{{name}}}",
                            )
                        )
    if scorer is not None and not (isinstance(scorer, str) and _POLICY_NAME.fullmatch(scorer)):
        problems.append(Problem(f"{where}.scorer", "must be the name of a registered scorer"))
    low = rank.get("min_score")
    if low is not None and (isinstance(low, bool) or not isinstance(low, int | float)):
        problems.append(Problem(f"{where}.min_score", "must be a number"))
    if not isinstance(rank.get("label", "model"), str):
        problems.append(Problem(f"{where}.label", "must be text"))
    return problems


def _check_rule(
    rule: object,
    where: str,
    candidates: Sequence[str],
    content: Callable[[str], Mapping[str, Any] | None],
) -> list[Problem]:
    if not isinstance(rule, Mapping):
        return [Problem(where, "a rule is a mapping with an id, a condition and an outcome")]
    problems = [
        Problem(f"{where}.{k}", f"unknown field; allowed: {', '.join(sorted(_RULE_KEYS))}")
        for k in rule
        if k not in _RULE_KEYS
    ]
    rid = rule.get("id")
    if not isinstance(rid, str) or not KEY_PATTERN.fullmatch(rid):
        problems.append(Problem(f"{where}.id", "every rule needs an id (letters, digits, _ . : -)"))
    if not isinstance(rule.get("description", ""), str):
        problems.append(Problem(f"{where}.description", "must be text"))
    if "when" in rule:
        problems.extend(_check_condition(rule["when"], f"{where}.when"))
    given = [o for o in OUTCOMES if o in rule]
    if len(given) != 1:
        problems.append(
            Problem(
                where, f"give exactly one outcome of {', '.join(OUTCOMES)}; got {given or 'none'}"
            )
        )
    among: Sequence[str] = candidates
    if "among" in rule:
        problems.extend(_keys_in(rule["among"], candidates, f"{where}.among"))
        if isinstance(rule["among"], list):
            among = [k for k in rule["among"] if k in candidates]
    if "show" in rule and rule["show"] not in candidates:
        problems.append(
            Problem(f"{where}.show", f"{rule['show']!r} is not a candidate of this placement")
        )
    if "next" in rule and rule["next"] is not True:
        problems.append(Problem(f"{where}.next", "write next: true to go on to the next rule"))
    if "exclude" in rule:
        if "next" not in rule:
            problems.append(Problem(f"{where}.exclude", "exclude goes with next: true"))
        problems.extend(_keys_in(rule["exclude"], candidates, f"{where}.exclude"))
    if "among" in rule and not ({"rank", "use"} & set(rule)):
        problems.append(Problem(f"{where}.among", "among goes with rank or use"))
    if "rank" in rule:
        problems.extend(_check_rank(rule["rank"], f"{where}.rank", content, among))
    if "use" in rule and not (isinstance(rule["use"], str) and _POLICY_NAME.fullmatch(rule["use"])):
        problems.append(Problem(f"{where}.use", "must be the name of a registered policy"))
    return problems


def check_rules(
    rules: object,
    placement: Mapping[str, Any] | None,
    content: Callable[[str], Mapping[str, Any] | None],
    prefix: str = "",
) -> list[Problem]:
    """Every problem with a placement's rule list (``placement`` is its body, if it exists)."""
    if placement is None:
        return [Problem(prefix, "no placement with this key; define it under placements first")]
    if not isinstance(rules, list):
        return [Problem(prefix, "rules are a list, evaluated in order")]
    if len(rules) > MAX_RULES:
        return [Problem(prefix, f"{len(rules)} rules; at most {MAX_RULES} per placement")]
    candidates = [c for c in placement.get("candidates") or [] if isinstance(c, str)]
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        where = f"{prefix}[{i}]"
        problems.extend(_check_rule(rule, where, candidates, content))
        rid = rule.get("id") if isinstance(rule, Mapping) else None
        if isinstance(rid, str):
            if rid in seen:
                problems.append(Problem(f"{where}.id", f"rule id {rid!r} is used twice"))
            seen.add(rid)
    return problems


def compile_rules(
    placement: str,
    version: int,
    rules: Sequence[Mapping[str, Any]],
    candidates: Sequence[str],
    attributes: Callable[[str], Mapping[str, Any] | None],
) -> RuleSet:
    """Compile a checked rule list; ``attributes`` gives each candidate's attributes."""
    out = []
    for rule in rules:
        outcome: Outcome
        ranking = None
        among = tuple(rule["among"]) if "among" in rule else None
        if "show" in rule:
            outcome = Show(rule["show"])
        elif "next" in rule:
            outcome = Next(tuple(rule.get("exclude", ())))
        elif "use" in rule:
            outcome = Use(rule["use"])
        else:
            spec = rule["rank"]
            outcome = Rank(
                spec.get("score"),
                spec.get("scorer"),
                spec.get("min_score"),
                spec.get("label", "model"),
            )
            if outcome.score is not None:
                paths = {}
                for key in among or candidates:
                    steps = fill_path(outcome.score, key, attributes(key) or {})
                    if steps is not None:
                        paths[key] = steps
                ranking = ScoreRanking(
                    paths=paths, label=outcome.label, min_score=outcome.min_score
                )
        when = compile_condition(rule["when"], strict=True) if rule.get("when") else None
        out.append(Rule(rule["id"], rule.get("description", ""), when, outcome, among, ranking))
    return RuleSet(placement, version, tuple(out))
