"""The decision engine: for each placement, pick eligible content, let policies choose, render.

One call reads the person once (a profile view, or ``None`` for an unknown visitor), builds the
condition document once, and then for each placement:

1. drops candidates that are frequency-capped or dismissed by this person (placement caps
   stop the whole slot);
2. asks the policies in turn — the placement's rules (first matching rule, which may rank by
   model score or hand over to a registered policy such as an experiment), then the fallback;
3. renders the chosen content's variant for the channel in the sandbox; if that fails, the
   content's static fallback fields or the placement default are shown instead;
4. records the impression (for caps) and logs the decision with its reasons and propensity.

>>> from personify.clock import FixedClock
>>> from personify.definitions import MemoryDefinitionStore
>>> from datetime import datetime, UTC
>>> store = MemoryDefinitionStore()
>>> _ = store.put("content", "hello", {"variants": {"web": {"text": "Hi {{ traits.name }}"}}}, "me")
>>> _ = store.put("placement", "hero", {"channel": "web", "candidates": ["hello"],
...                                     "default": "hello"}, "me")
>>> engine = DecisionEngine(store, None, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
>>> [d] = engine.decide({"profile_id": "p1", "traits": {"name": {"value": "Ada"}}}, {}, ["hero"])
>>> d.content, d.rendered, d.reasons[-1].type
('hello', {'text': 'Hi Ada'}, 'fallback')
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from personify.clock import Clock
from personify.decide.caps import DismissMemory, ImpressionMemory, blocked
from personify.decide.catalog import Catalog, LiveCatalog
from personify.decide.content import ContentItem, content_cap_key
from personify.decide.log import DecisionLog, LoggedDecision
from personify.decide.placements import Placement, placement_cap_key
from personify.decide.policies.base import Choice, Policy, PolicyRequest, Reason
from personify.decide.policies.fallback import Fallback
from personify.decide.policies.ranking import Scorer
from personify.decide.policies.rules import FirstMatchingRule
from personify.decide.request import enrich_context, unknown_placements
from personify.decide.templates import RenderError
from personify.definitions import DefinitionStore
from personify.errors import PersonifyError
from personify.profiles.records import iso
from personify.segments.document import condition_document

_CAP_HISTORY_S: Final = 7 * 86400.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """The answer for one placement."""

    decision_id: str
    placement: str
    content: str | None
    content_type: str | None
    content_version: int | None
    variant: str | None
    rendered: dict[str, Any] | None
    policy: str
    propensity: float
    reasons: tuple[Reason, ...]

    def as_dict(self) -> dict[str, Any]:
        body = None
        if self.content is not None:
            body = {
                "key": self.content,
                "type": self.content_type,
                "version": self.content_version,
                "fields": self.rendered,
            }
        return {
            "placement": self.placement,
            "decision_id": self.decision_id,
            "content": body,
            "variant": self.variant,
            "policy": self.policy,
            "propensity": self.propensity,
            "reasons": [r.as_dict() for r in self.reasons],
        }


class DecisionIds:
    """Unguessable decision ids (``d_`` + 32 hex digits), drawn from the OS in bulk.

    Ids must not be guessable (a forged reward for someone else's decision would poison
    learning), so they come from ``os.urandom``; reading 8 KiB at a time keeps the system
    call off the per-decision path.
    """

    _CHUNK = 512

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: list[str] = []

    def next(self) -> str:
        with self._lock:
            if not self._pool:
                raw = os.urandom(16 * self._CHUNK).hex()
                self._pool = ["d_" + raw[i : i + 32] for i in range(0, len(raw), 32)]
            return self._pool.pop()


def _days_since(stamp: object, now: datetime) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return round((now - then).total_seconds() / 86400.0, 3)


def decision_document(
    view: Mapping[str, Any] | None, context: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The condition document plus recency in days (``computed.days_since_last_seen`` ...).

    Rules such as "no visit in 14 days" need recency relative to *now*, which a stored profile
    cannot hold, so it is derived here for each decision.
    """
    doc = condition_document(view or {}, context)
    computed = doc["computed"]
    for name, stamp in (
        ("days_since_last_seen", "last_seen"),
        ("days_since_last_order", "last_order_at"),
        ("days_since_first_seen", "first_seen"),
    ):
        if name not in computed:
            days = _days_since(computed.get(stamp), now)
            if days is not None:
                computed[name] = days
    return doc


ProductSource = Callable[[str | None, int, str | None], list[dict[str, Any]]]
"""``(profile_id or None, k, recommender placement) -> items`` for product blocks."""


class DecisionEngine:
    """Decides for placements; safe to call from many threads."""

    def __init__(
        self,
        store: DefinitionStore,
        log: DecisionLog | None,
        clock: Clock,
        *,
        poll_interval: float = 0.5,
        max_units: int = 100_000,
        products: ProductSource | None = None,
    ) -> None:
        # Fills ``product_block`` content with items (the recommender, when one is wired).
        self.products = products
        self.catalog = LiveCatalog(store, poll_interval)
        self.log = log
        self.clock = clock
        self._poll = poll_interval
        self._policies: dict[str, Policy] = {}
        self._scorers: dict[str, Scorer] = {}
        self._sources: list[Callable[[], None]] = []
        self._fallback = Fallback()
        self._impressions = ImpressionMemory(max_units)
        self._dismissed = DismissMemory()
        self._dismiss_token = 0
        self._dismiss_checked = 0.0
        self._lock = threading.Lock()
        self._rules: tuple[int, FirstMatchingRule] | None = None
        self._ids = DecisionIds()
        self._load_history()

    # -- registries ------------------------------------------------------------------------
    def register_policy(self, name: str, policy: Policy) -> None:
        """Make ``policy`` available to rules as ``use: <name>`` (experiments, bandits)."""
        self._policies[name] = policy

    def add_policy_source(self, discover: Callable[[], None]) -> None:
        """``discover()`` registers policies defined since it last looked (rate-limited by
        its owner); rules call it when they name a policy not registered yet."""
        self._sources.append(discover)

    def _discover(self) -> None:
        for discover in self._sources:
            discover()

    def register_scorer(self, name: str, scorer: Scorer) -> None:
        """Make a request-time scorer available to rules as ``rank: {scorer: <name>}``."""
        self._scorers[name] = scorer

    # -- state from the log --------------------------------------------------------------------
    def _load_history(self) -> None:
        if self.log is None:
            return
        since = self.clock.now().timestamp() - _CAP_HISTORY_S
        for unit, placement, content, at_s in self.log.impressions_since(since):
            keys = (content_cap_key(content), placement_cap_key(placement))
            self._impressions.record(unit, keys, at_s)
        self._poll_dismissals(force=True)

    def _poll_dismissals(self, force: bool = False) -> None:
        if self.log is None:
            return
        now = time.monotonic()
        if not force and now - self._dismiss_checked < self._poll:
            return
        with self._lock:
            self._dismiss_checked = now
            try:
                rows, self._dismiss_token = self.log.dismissals_since(self._dismiss_token)
            except sqlite3.Error:  # busy or locked: try again at the next poll
                logger.warning("cannot read dismissals now", exc_info=True)
                return
        for unit, content in rows:
            self._dismissed.add(unit, content)

    def dismiss(self, unit: str, content: str) -> None:
        """Never show ``content`` to ``unit`` again (this process; events persist it)."""
        self._dismissed.add(unit, content)

    def _rules_policy(self, catalog: Catalog) -> FirstMatchingRule:
        cached = self._rules
        if cached is not None and cached[0] == catalog.revision:
            return cached[1]
        policy = FirstMatchingRule(
            catalog.rule_sets, self._policies, self._scorers, discover=self._discover
        )
        self._rules = (catalog.revision, policy)
        return policy

    # -- deciding --------------------------------------------------------------------------------
    def decide(
        self,
        view: Mapping[str, Any] | None,
        context: Mapping[str, Any],
        placements: Sequence[str],
        *,
        anonymous_id: str | None = None,
        withheld: str | None = None,
    ) -> list[Decision]:
        """Decide every placement for one person (``view`` is ``None`` for an unknown visitor).

        ``withheld`` (the consent policy's reason) decides as for an unknown visitor: the
        profile is not used, and the reasons say why (issue 6, ``personalization``).
        Raises :class:`~personify.errors.InvalidInput` if a placement is not defined.
        """
        if withheld is not None:
            view = None
        catalog = self.catalog.current()
        missing = unknown_placements(tuple(placements), catalog.placements)
        if missing is not None:
            raise missing
        self._poll_dismissals()
        now = self.clock.now()
        ctx = enrich_context(context, now)
        document = decision_document(view, ctx, now)
        profile_id = view.get("profile_id") if view else None
        unit = profile_id or (f"anon:{anonymous_id}" if anonymous_id else None)
        rules = self._rules_policy(catalog)
        first: tuple[Reason, ...] = ()
        if withheld is not None:
            first = (
                Reason(
                    "consent",
                    f"{withheld}: not personalized, so only fallbacks and context rules apply",
                ),
            )
        elif view is None:
            first = (
                Reason(
                    "visitor",
                    "unknown visitor: no profile yet, so only fallbacks and context rules apply",
                ),
            )
        variables = {
            "traits": document["traits"],
            "computed": document["computed"],
            "scores": document["scores"],
            "segments": document["segments"],
            "context": ctx,
        }
        out = []
        for name in placements:
            placement = catalog.placements[name]
            choice, notes = self._choose(
                catalog, rules, placement, document, ctx, unit, now.timestamp()
            )
            decision = self._finish(catalog, placement, choice, (*first, *notes), variables)
            if decision.content_type == "product_block" and decision.rendered is not None:
                decision = self._fill_products(catalog, decision, profile_id)
            self._remember(decision, profile_id, unit, context, now)
            out.append(decision)
        return out

    def _choose(
        self,
        catalog: Catalog,
        rules: FirstMatchingRule,
        placement: Placement,
        document: Mapping[str, Any],
        context: Mapping[str, Any],
        unit: str | None,
        now_s: float,
    ) -> tuple[Choice, list[Reason]]:
        notes: list[Reason] = []
        seen = self._impressions.seen(unit) if unit is not None else None
        if seen is not None:
            why = blocked(seen, placement.cap_key, placement.caps, now_s)
            if why is not None:
                reason = Reason("cap", f"placement {placement.key!r} is {why} for this person")
                return Choice(None, "caps", 1.0, (reason,)), notes
        dismissed = self._dismissed.of(unit) if unit is not None else frozenset()
        eligible: list[str] = []
        excluded: dict[str, str] = {}
        for key, item, cap_key in catalog.slots[placement.key]:
            if item is None:
                excluded[key] = "not defined"
            elif dismissed and item.dismissible and key in dismissed:
                excluded[key] = "dismissed by this person"
            elif (
                seen is not None
                and cap_key in seen  # most candidates were never shown to this person
                and item.caps.limits
                and (why := blocked(seen, cap_key, item.caps, now_s))
            ):
                excluded[key] = why
            else:
                eligible.append(key)
        request = PolicyRequest(
            placement, tuple(eligible), document, context, unit, excluded, notes
        )
        choice = rules.choose(request) or self._fallback.choose(request)
        return choice, notes

    def _finish(
        self,
        catalog: Catalog,
        placement: Placement,
        choice: Choice,
        notes: tuple[Reason, ...],
        variables: Mapping[str, Any],
    ) -> Decision:
        reasons = [*notes, *choice.reasons]
        item = catalog.content.get(choice.content) if choice.content is not None else None
        variant = choice.variant or placement.channel
        fields = None
        if item is not None:
            fields, item, variant = self._render(
                catalog, placement, item, variant, variables, reasons
            )
        return Decision(
            decision_id=self._ids.next(),
            placement=placement.key,
            content=item.key if item is not None else None,
            content_type=item.type if item is not None else None,
            content_version=item.version if item is not None else None,
            variant=variant if item is not None else None,
            rendered=fields,
            policy=choice.policy,
            propensity=choice.propensity,
            reasons=tuple(reasons),
        )

    def _fill_products(
        self, catalog: Catalog, decision: Decision, profile_id: str | None
    ) -> Decision:
        """Put recommended items into a product block (``attributes``: ``k``, ``placement``).

        Without a recommender, or when it cannot answer (no model trained yet), the block
        keeps its static fields and the reasons say why; the decision never fails for it.
        """
        assert decision.content is not None and decision.rendered is not None
        item = catalog.content[decision.content]
        attrs = item.attributes
        k = attrs.get("k", 4)
        k = k if isinstance(k, int) and 1 <= k <= 50 else 4
        where = attrs.get("placement") if isinstance(attrs.get("placement"), str) else None
        reasons = list(decision.reasons)
        rendered = dict(decision.rendered)
        if self.products is None:
            reasons.append(Reason("products", "no recommender is wired; block shown as is"))
        else:
            try:
                items = self.products(profile_id, k, where)
            except PersonifyError as exc:
                reasons.append(Reason("products", f"no recommendations: {exc.message}"))
            else:
                rendered["products"] = items
                who = "this person" if profile_id else "an unknown visitor (popular items)"
                reasons.append(Reason("products", f"{len(items)} recommended items for {who}"))
        return replace(decision, rendered=rendered, reasons=tuple(reasons))

    def _render(
        self,
        catalog: Catalog,
        placement: Placement,
        item: ContentItem,
        variant: str,
        variables: Mapping[str, Any],
        reasons: list[Reason],
    ) -> tuple[dict[str, Any] | None, ContentItem | None, str]:
        try:
            return self._fields(item, variant, placement, variables), item, variant
        except RenderError as exc:
            failure = f"content {item.key!r} failed to render ({exc})"
        if item.fallback is not None:
            reasons.append(Reason("render", f"{failure}; showing its static fallback"))
            return dict(item.fallback), item, variant
        default = catalog.content.get(placement.default or "")
        if default is not None and default.key != item.key:
            try:
                fields = self._fields(default, placement.channel, placement, variables)
            except RenderError:
                pass
            else:
                reasons.append(Reason("render", f"{failure}; showing the default {default.key!r}"))
                return fields, default, placement.channel
        reasons.append(Reason("render", f"{failure}; nothing else could be shown"))
        return None, None, variant

    @staticmethod
    def _fields(
        item: ContentItem, channel: str, placement: Placement, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        variant = item.variants.get(channel)
        if variant is None:
            raise RenderError(f"no {channel!r} variant")
        scope = {**variables, "content": item.attributes, "placement": placement.key}
        if variant.templates is None:
            return dict(variant.data)
        rendered = variant.templates.render(scope)
        data = variant.data
        return {name: rendered[name] if name in rendered else data[name] for name in variant.order}

    def _remember(
        self,
        decision: Decision,
        profile_id: str | None,
        unit: str | None,
        context: Mapping[str, Any],
        now: datetime,
    ) -> None:
        at_s = now.timestamp()
        if unit is not None and decision.content is not None:
            keys = (content_cap_key(decision.content), placement_cap_key(decision.placement))
            self._impressions.record(unit, keys, at_s)
        if self.log is not None:
            self.log.record(
                LoggedDecision(
                    decision_id=decision.decision_id,
                    at=iso(now),
                    at_s=at_s,
                    profile_id=profile_id,
                    unit=unit,
                    placement=decision.placement,
                    content=decision.content,
                    variant=decision.variant,
                    policy=decision.policy,
                    propensity=decision.propensity,
                    reasons=[r.as_dict() for r in decision.reasons],
                    context=dict(context),
                )
            )
