"""First matching rule: walk a placement's rules in order; the first that decides wins."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from personify.decide.policies.base import Choice, Policy, PolicyRequest, Reason
from personify.decide.policies.ranking import Scorer, ScoreRanking, lookup
from personify.decide.rules import Next, Rank, Rule, RuleSet, Show, Use


class FirstMatchingRule:
    """Deterministic (propensity 1, unless a delegated policy says otherwise).

    A matching ``show`` whose content is capped or dismissed does not decide: the engine notes
    why and goes on, so a capped offer gives way to the next rule rather than to nothing.
    ``policies`` and ``scorers`` are the engine's live registries, read at request time, so a
    policy registered after the rules were compiled is still found. A rule naming a policy not
    registered yet calls ``discover`` once (an experiment defined since the last look registers
    itself there) before it gives up.
    """

    name = "rules"

    def __init__(
        self,
        rule_sets: Mapping[str, RuleSet],
        policies: Mapping[str, Policy],
        scorers: Mapping[str, Scorer],
        discover: Callable[[], None] | None = None,
    ) -> None:
        self._rule_sets = rule_sets
        self._policies = policies
        self._scorers = scorers
        self._discover = discover

    def choose(self, request: PolicyRequest) -> Choice | None:
        rule_set = self._rule_sets.get(request.placement.key)
        if rule_set is None:
            return None
        doc = request.document
        for test, rule in rule_set.steps:
            if test is not None and not test(doc):
                continue
            details: dict[str, object] = {"rule": rule.id, "rules_version": rule_set.version}
            if rule.when is not None:
                # the values the condition read (scores, computed traits, context), so the
                # reason shows why (see Rule.fact_paths for what is left out)
                details["facts"] = {path: lookup(doc, steps) for path, steps in rule.fact_paths}
            matched = Reason(
                "rule",
                f"rule {rule.id!r} matched" + (f": {rule.description}" if rule.description else ""),
                details,
            )
            outcome = rule.outcome
            if isinstance(outcome, Next):
                if outcome.exclude:
                    keep = tuple(c for c in request.candidates if c not in outcome.exclude)
                    request = request.narrowed(keep)
                request.notes.append(matched)
                continue
            if isinstance(outcome, Show):
                if outcome.content in request.candidates:
                    return Choice(
                        outcome.content, self.name, 1.0, (matched,), details={"rule": rule.id}
                    )
                why = request.excluded.get(outcome.content, "excluded by an earlier rule")
                request.notes.append(
                    Reason(
                        "rule",
                        f"rule {rule.id!r} matched but {outcome.content!r} is {why}",
                        {"rule": rule.id},
                    )
                )
                continue
            choice = self._delegate(rule, outcome, request)
            if choice is not None:
                return Choice(
                    choice.content,
                    choice.policy,
                    choice.propensity,
                    (matched, *choice.reasons),
                    choice.variant,
                    {**choice.details, "rule": rule.id},
                )
            request.notes.append(
                Reason("rule", f"rule {rule.id!r} matched but did not decide", {"rule": rule.id})
            )
        return None

    def _delegate(self, rule: Rule, outcome: Rank | Use, request: PolicyRequest) -> Choice | None:
        if rule.among is not None:
            request = request.narrowed(tuple(c for c in request.candidates if c in rule.among))
        if not request.candidates:
            return None
        policy: Policy | None
        if isinstance(outcome, Use):
            policy = self._policies.get(outcome.policy)
            if policy is None and self._discover is not None:
                self._discover()
                policy = self._policies.get(outcome.policy)
            missing = f"policy {outcome.policy!r} is not registered"
        elif rule.ranking is not None:
            policy = rule.ranking
            missing = ""
        else:
            assert outcome.scorer is not None
            scorer = self._scorers.get(outcome.scorer)
            policy = (
                ScoreRanking(scorer=scorer, label=outcome.label, min_score=outcome.min_score)
                if scorer is not None
                else None
            )
            missing = f"scorer {outcome.scorer!r} is not registered"
        if policy is None:
            request.notes.append(Reason("policy", missing, {"rule": rule.id}))
            return None
        return policy.choose(request)
