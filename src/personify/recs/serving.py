"""Serving: recommendations for a profile right now, from the registered model.

The trained model (a :class:`RecsBundle`: recommender, rules, interaction weights, the end
of its training window) is loaded from the model registry under the name ``recs``; the
version that serves is the promoted one (else the latest), re-checked every
``refresh_s`` seconds so a promotion or rollback takes effect without a restart.

Recent activity counts without retraining: the profile's timeline events newer than the
training window (product views, add-to-carts, orders) are folded into its history before
scoring. A visitor who just viewed three mugs therefore gets items bought with mugs, a
long-time buyer gets their history plus today's clicks, and a visitor with nothing at all
gets (segment) popularity.

The decision engine fills a ``recommendations`` content block with :func:`recommend_for`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from personify.errors import InvalidInput, NotFound, Problem
from personify.recs.base import Recommender, Scored, check_k
from personify.recs.data import Interactions, InteractionWeights
from personify.recs.rules import BusinessRules
from personify.recs.session import Lru, fold_in, recent_events, utc
from personify.recs.sources import EVENT_KIND

if TYPE_CHECKING:
    from personify.facade import Personify
    from personify.models.registry import ModelRegistry, ModelVersion

MODEL_NAME = "recs"
MODEL_KIND = "recommender"
CANDIDATES_PER_SLOT = 5
RECENT_CACHE_SIZE = 50_000
TIMELINE_LIMIT = 30  # the newest events are what a session adds; older ones are trained


@dataclass
class RecsBundle:
    """What the registry stores for serving: the model and how to apply it."""

    model: Recommender
    weights: InteractionWeights
    trained_until: str  # ISO UTC; later events are folded in at request time
    rules: BusinessRules = field(default_factory=BusinessRules)
    segment_trait: str | None = "country"
    source: str = "events"

    @property
    def data(self) -> Interactions:
        return self.model.data_


@dataclass(frozen=True)
class Recommendation:
    """A served list: the items, how they were found and which model version made them."""

    items: list[dict[str, Any]]
    strategy: str
    model_version: int
    profile_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "strategy": self.strategy,
            "model": {"name": MODEL_NAME, "version": self.model_version},
            "items": self.items,
        }


class RecsService:
    """Loads the registered bundle and answers recommendation requests for an engine."""

    def __init__(self, registry: ModelRegistry, name: str = MODEL_NAME, refresh_s: float = 30.0):
        self.registry = registry
        self.name = name
        self.refresh_s = refresh_s
        self._loaded: tuple[RecsBundle, ModelVersion] | None = None
        self._facts: ItemFacts | None = None
        self._recent_cache: Lru[tuple[str, str, int, int, str], list[tuple[str, str, str]]] = Lru(
            RECENT_CACHE_SIZE
        )
        self._checked = 0.0
        self._lock = threading.Lock()

    def bundle(self) -> tuple[RecsBundle, ModelVersion]:
        """The serving bundle; reloaded when another version has been promoted."""
        with self._lock:
            now = time.monotonic()
            if self._loaded is None or now - self._checked > self.refresh_s:
                try:
                    current = self.registry.current(self.name)
                except NotFound:
                    if self._loaded is not None:
                        raise
                    raise NotFound(
                        f"no recommender has been trained yet (model {self.name!r})",
                        hint="train one: personify recs train (or --online-retail PATH)",
                    ) from None
                if self._loaded is None or self._loaded[1].version != current.version:
                    # unpickling an implicit model checks the BLAS threads, as building one does
                    with threadpool_limits(1, "blas"):
                        model, meta = self.registry.load(self.name, current.version)
                    if not isinstance(model, RecsBundle):
                        raise InvalidInput(
                            f"model {self.name!r} v{meta.version} is not a recommender bundle",
                            hint="register recommenders with `personify recs train`",
                        )
                    self._loaded = (model, meta)
                    self._facts = ItemFacts.of(model)
                self._checked = now
            return self._loaded

    def facts(self) -> ItemFacts:
        """Titles, categories, prices and stock of the serving bundle's items."""
        self.bundle()
        assert self._facts is not None
        return self._facts

    # -- users ----------------------------------------------------------------------------
    def for_profile(
        self,
        engine: Personify,
        profile_id: str | None,
        k: int = 10,
        placement: str | None = None,
    ) -> Recommendation:
        """Recommendations for a profile (``None``: an unknown visitor)."""
        check_k(k)
        bundle, meta = self.bundle()
        bundle.rules.placement(placement)  # an unknown placement fails before any work
        data = bundle.data
        segment = None
        row = -1
        recent: list[tuple[str, str, str]] = []
        if profile_id is not None:
            profile = _live_profile(engine, profile_id)
            profile_id = str(profile["profile_id"])
            if not _may_personalize(engine, profile):
                picked = self._pick(
                    bundle,
                    lambda n: bundle.model.recommend(None, n),
                    k,
                    placement,
                    purchased=set(),
                    viewed=set(),
                )
                items = self.facts().describe(picked)
                return Recommendation(items, "not_personalized", meta.version, profile_id)
            row = _model_row(data, profile)
            segment = _segment(bundle, data, row, profile)
            recent = self._recent(engine, profile, bundle.trained_until)
        query = fold_in(data, row, recent, bundle.weights, segment)
        strategy = "popular"
        if query.history.nnz:
            strategy = "personal" if row >= 0 else "session"
            if row >= 0 and recent:
                strategy = "personal+session"
        bought = set(data.items[query.purchases.indices].tolist())
        viewed = {item for item, kind, _ in recent if kind != "purchase"}
        picked = self._pick(
            bundle,
            lambda n: bundle.model.recommend(None, n, query=query),
            k,
            placement,
            purchased=bought,
            viewed=viewed,
        )
        return Recommendation(self.facts().describe(picked), strategy, meta.version, profile_id)

    def for_model_user(
        self, user: str, k: int = 10, placement: str | None = None
    ) -> Recommendation:
        """Recommendations for a user id of the training data that has no profile here
        (a model trained on a file whose customers were not imported): no session events,
        no consent record, so this is for the CLI and notebooks, not for serving."""
        check_k(k)
        bundle, meta = self.bundle()
        bundle.rules.placement(placement)
        data = bundle.data
        if user not in data.user_index:
            raise NotFound(
                f"no profile and no training history for user {user!r}",
                hint="use a user id from the training data, or import the customers first",
            )
        query = data.query([data.user_index[user]])
        bought = set(data.items[query.purchases.indices].tolist())
        picked = self._pick(
            bundle,
            lambda n: bundle.model.recommend(None, n, query=query),
            k,
            placement,
            purchased=bought,
            viewed=set(),
        )
        return Recommendation(self.facts().describe(picked), "personal", meta.version)

    def _recent(
        self, engine: Personify, profile: Mapping[str, Any], since: str
    ) -> list[tuple[str, str, str]]:
        """The profile's product events after ``since``, read from its timeline.

        The timeline query is the costly part of a request, so it is skipped when the
        profile has seen nothing since the training window, and its result is cached
        under the profile's event count and last event time: a new processed event
        changes the key (events are stored before the profile is updated, so a key
        never describes fewer events than the timeline holds).
        """
        computed = profile.get("computed", {})
        last = computed.get("last_seen")
        if last is None or utc(str(last)) <= utc(since):
            return []
        counts = computed.get("event_counts", {})
        if not any(counts.get(name) for name in EVENT_KIND):
            return []  # no product event at all (a login, page views only): nothing to fold in
        pid = str(profile["profile_id"])
        seen = sum(int(n) for n in counts.values())
        key = (pid, str(last), seen, len(profile.get("merged_from", [])), since)
        found = self._recent_cache.get(key)
        if found is None:
            rows = engine.timeline(pid, limit=TIMELINE_LIMIT)
            found = recent_events(rows, since)
            self._recent_cache.put(key, found)
        return found

    # -- items ----------------------------------------------------------------------------
    def similar(self, item: str, k: int = 10, placement: str | None = None) -> Recommendation:
        """Items like ``item`` for its product page (content similarity for new items)."""
        check_k(k)
        bundle, meta = self.bundle()
        bundle.rules.placement(placement)
        picked = self._pick(
            bundle,
            lambda n: bundle.model.similar_items(item, n),
            k,
            placement,
            purchased=set(),
            viewed=set(),
        )
        return Recommendation(self.facts().describe(picked), "similar", meta.version)

    def _pick(
        self,
        bundle: RecsBundle,
        fetch: Callable[[int], list[Scored]],
        k: int,
        placement: str | None,
        *,
        purchased: set[str],
        viewed: set[str],
    ) -> list[Scored]:
        """The best ``k`` of the model's candidates that pass the business rules.

        Rules can drop most of a first pool of ``k * CANDIDATES_PER_SLOT`` (a customer who
        bought many of the top items, a narrow category filter), so the pool grows fourfold
        until ``k`` pass or the model has no more to give: fewer than ``k`` only when fewer
        items exist that the rules allow.
        """
        facts = self.facts()
        wanted = k * CANDIDATES_PER_SLOT
        while True:
            found = fetch(wanted)
            picked = facts.apply(
                bundle.rules, found, k, placement, purchased=purchased, viewed=viewed
            )
            if len(picked) >= k or len(found) < wanted:
                return picked
            wanted *= 4


@dataclass(frozen=True)
class ItemFacts:
    """Per-item lookups taken from the catalogue once per loaded model (not per request)."""

    descriptions: dict[str, dict[str, Any]]
    categories: dict[str, str | None]
    prices: dict[str, float | None]
    out_of_stock: frozenset[str]

    @classmethod
    def of(cls, bundle: RecsBundle) -> ItemFacts:
        catalogue = bundle.data.catalogue
        if catalogue is None:
            return cls({}, {}, {}, frozenset())
        frame = catalogue.frame
        ids = [str(i) for i in frame.index]
        descriptions = {i: catalogue.describe(i) for i in ids}
        return cls(
            descriptions=descriptions,
            categories={i: d["category"] for i, d in descriptions.items()},
            prices={i: d["price"] for i, d in descriptions.items()},
            out_of_stock=frozenset(
                i for i, ok in zip(ids, frame["in_stock"], strict=True) if not bool(ok)
            ),
        )

    def apply(
        self,
        rules: BusinessRules,
        found: list[Scored],
        k: int,
        placement: str | None,
        *,
        purchased: set[str],
        viewed: set[str],
    ) -> list[Scored]:
        """``rules`` over ``found``, with this catalogue's categories, prices and stock."""
        return rules.apply(
            found,
            k,
            placement=placement,
            categories=self.categories,
            prices=self.prices,
            out_of_stock=self.out_of_stock,
            purchased=purchased,
            recently_viewed=viewed,
        )

    def describe(self, picked: list[Scored]) -> list[dict[str, Any]]:
        """The items as the API returns them: id, title, category, price, score, reason."""
        out = []
        for s in picked:
            base = self.descriptions.get(s.item, {"id": s.item})
            out.append({**base, "score": round(s.score, 6), "reason": s.reason})
        return out


def _may_personalize(engine: Personify, profile: Mapping[str, Any]) -> bool:
    """Consent for the ``personalization`` purpose (engines without privacy: allowed).

    Without it the visitor gets what anyone would: global popularity, no history, no
    session, not even their country's favourites.
    """
    privacy = getattr(engine, "privacy", None)
    if privacy is None:
        return True
    return bool(privacy.consent.may("personalization", profile).allowed)


def _live_profile(engine: Personify, profile_id: str) -> dict[str, Any]:
    """The stored profile document, merges followed (no computed view: this is hot)."""
    pid = profile_id
    for _ in range(64):
        doc = engine.stores.profiles.get_many([pid]).get(pid)
        if doc is None:
            raise NotFound(
                f"no profile {profile_id!r}", hint="look the visitor up by an identity instead"
            )
        if not doc.get("merged_into"):
            return doc
        pid = str(doc["merged_into"])
    raise NotFound(f"profile {profile_id!r} has a merge chain too long to follow")


def _model_row(data: Interactions, profile: Mapping[str, Any]) -> int:
    """The model's row for a profile: by profile id, else by any of its user ids."""
    keys = [str(profile["profile_id"]), *profile.get("merged_from", [])]
    keys += list(profile.get("identities", {}).get("user_id", []))
    for key in keys:
        if key in data.user_index:
            return data.user_index[key]
    return -1


def _segment(
    bundle: RecsBundle, data: Interactions, row: int, profile: Mapping[str, Any]
) -> str | None:
    if row >= 0 and data.segments[row] is not None:
        return str(data.segments[row])
    if bundle.segment_trait is None:
        return None
    trait = profile.get("traits", {}).get(bundle.segment_trait)
    value = trait.get("value") if isinstance(trait, Mapping) else None
    return str(value) if value is not None else None


_SERVICES: weakref.WeakKeyDictionary[Any, RecsService] = weakref.WeakKeyDictionary()
_SERVICES_LOCK = threading.Lock()


def service_for(engine: Personify) -> RecsService:
    """The engine's recommendation service (one per engine, registry in its data dir)."""
    from personify.models.registry import ModelRegistry

    with _SERVICES_LOCK:
        service = _SERVICES.get(engine)
        if service is None:
            service = RecsService(ModelRegistry(engine.settings.data_dir / "models"))
            _SERVICES[engine] = service
        return service


def recommend_for(
    engine: Personify,
    profile_id: str | None,
    k: int = 10,
    placement: str | None = None,
) -> list[dict[str, Any]]:
    """Items for a ``recommendations`` content block, best first.

    Each item is ``{"id", "title", "category", "price", "score", "reason"}``. ``profile_id``
    ``None`` means an unknown visitor (popular items). Raises :class:`NotFound` when no
    recommender has been trained (``personify recs train``) or the profile does not exist,
    and :class:`InvalidInput` for a bad ``k`` or an unknown placement.
    """
    if profile_id is not None and not str(profile_id).strip():
        raise InvalidInput(
            "profile_id is empty", problems=[Problem("profile_id", "give an id or None")]
        )
    return service_for(engine).for_profile(engine, profile_id, k, placement).items
