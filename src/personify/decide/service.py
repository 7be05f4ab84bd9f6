"""Deciding by identity: the Python API behind ``POST /v1/decide`` and ``personify decide``.

>>> from personify import Settings
>>> from personify.platform import build
>>> p = build(Settings(state_backend="memory", event_store_backend="memory",
...                    bus_backend="memory", write_keys="k"))
>>> decider = Decider(p)
>>> _ = decider.store.put("content", "hi", {"variants": {"web": {"text": "Hello"}}}, "me")
>>> _ = decider.store.put("placement", "hero", {"channel": "web", "candidates": ["hi"],
...                                             "default": "hi"}, "me")
>>> _ = decider.engine.catalog.refresh()
>>> [d] = decider.decide(anonymous_id="a-1", placements=["hero"])
>>> d.content, d.rendered, d.reasons[0].type
('hi', {'text': 'Hello'}, 'visitor')
>>> decider.close(); p.close()
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from personify.config import Settings
from personify.decide.attribution import RewardAttributor
from personify.decide.engine import Decision, DecisionEngine
from personify.decide.log import DecisionLog
from personify.decide.request import DecideRequest, parse_request
from personify.decide.views import Person, PersonCache, watched_files
from personify.definitions import DefinitionStore
from personify.errors import NotFound
from personify.facade import Personify
from personify.profiles.records import lifecycle_stage
from personify.storage.sqlite.watch import FileWatch

logger = logging.getLogger(__name__)
_STAGE_HORIZON = timedelta(minutes=1)


def open_decision_log(settings: Settings) -> DecisionLog:
    """``data_dir/decisions.sqlite`` (in memory for the ``memory`` state backend)."""
    if settings.state_backend == "memory":
        return DecisionLog(None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return DecisionLog(settings.data_dir / "decisions.sqlite")


class Decider:
    """Resolves who is asking, then lets the :class:`DecisionEngine` decide."""

    def __init__(
        self,
        personify: Personify,
        *,
        store: DefinitionStore | None = None,
        log: DecisionLog | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.personify = personify
        # the engine's own definition store (segments, experiments and decisions share it)
        self.store = store if store is not None else personify.stores.definitions
        # the engine's decision log when the platform wires one (its RewardAttributor then
        # writes where this reads, even in memory); else a log of our own
        shared = getattr(personify.stores, "decisions", None)
        if log is None and isinstance(shared, DecisionLog):
            log = shared
        self._own_log = log is None
        self.log = log if log is not None else open_decision_log(personify.settings)
        self.engine = DecisionEngine(
            self.store,
            self.log,
            personify.clock,
            poll_interval=poll_interval,
            products=self._products,
        )
        self.attributor = RewardAttributor(self.log)
        self._known: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._known_max = personify.settings.cache_size
        self._lock = threading.Lock()
        self._watch = _watch(personify.settings)
        self.people = PersonCache(
            self._person,
            self._watch.token if self._watch is not None else None,
            max_size=personify.settings.cache_size,
        )

    def _products(self, profile_id: str | None, k: int, placement: str | None) -> list[Any]:
        """Product blocks are filled by the recommender from the model registry."""
        from personify.recs.serving import recommend_for

        return recommend_for(self.personify, profile_id, k, placement)

    def view(self, request: DecideRequest) -> dict[str, Any] | None:
        """The profile view of the person asking, or ``None`` for an unknown visitor."""
        person = self.person(request)
        return person.view if person is not None else None

    def person(self, request: DecideRequest) -> Person | None:
        """The person asking (view and consent), or ``None`` for an unknown visitor."""
        for kind, value in (("user_id", request.user_id), ("anonymous_id", request.anonymous_id)):
            if value is None:
                continue
            pid = self._known.get((kind, value))
            try:
                if pid is None:
                    pid = self.personify.lookup(kind, value)
                    self._remember(kind, value, pid)
                return self._staged(self.people.get(pid))
            except NotFound:
                self._known.pop((kind, value), None)
                continue
        return None

    def _person(self, profile_id: str) -> Person:
        """Read one person from the stores (what :attr:`people` caches)."""
        p = self.personify
        # with a cache of our own, never copy the facade's (see Personify.profile)
        view = p.profile(profile_id, history=False, cached=not self.people.caching)
        consent = p.privacy.may("personalization", view) if p.privacy is not None else None
        now = p.clock.now()
        view = self._restaged(view, now)
        # Stages only move forward (active, lapsing, churned), so if the stage is the same
        # a while from now it holds until then, and reads in between need not recompute it.
        later = now + _STAGE_HORIZON
        steady = self._stage(view, later) == self._stage(view, now)
        return Person(
            view,
            None if consent is None or consent.allowed else consent.reason,
            later.timestamp() if steady else 0.0,
        )

    def _staged(self, person: Person) -> Person:
        """``person`` with the lifecycle stage as of now: it moves with the clock (lapsing,
        churned), not only when the profile changes, so a cached view may be behind."""
        now = self.personify.clock.now()
        if now.timestamp() < person.stage_until:
            return person
        view = self._restaged(person.view, now)
        return person if view is person.view else Person(view, person.withheld)

    def _stage(self, view: dict[str, Any], at: datetime) -> str | None:
        computed = view.get("computed")
        if not isinstance(computed, dict) or "lifecycle_stage" not in computed:
            return None
        limits = self.personify.settings.profiles
        return lifecycle_stage(view, at, limits.lapsing_after_days, limits.churned_after_days)

    def _restaged(self, view: dict[str, Any], now: datetime) -> dict[str, Any]:
        """``view``, or a copy with the lifecycle stage of ``now`` if it moved on."""
        stage = self._stage(view, now)
        computed = view.get("computed")
        if stage is None or not isinstance(computed, dict) or stage == computed["lifecycle_stage"]:
            return view
        return {**view, "computed": {**computed, "lifecycle_stage": stage}}

    def _remember(self, kind: str, value: str, pid: str) -> None:
        # An identity's profile id stays valid: Personify.profile follows merges to the
        # survivor, and a profile that is gone raises NotFound (then the entry is dropped).
        with self._lock:
            self._known[(kind, value)] = pid
            if len(self._known) > self._known_max:
                self._known.popitem(last=False)

    def decide_request(self, request: DecideRequest) -> list[Decision]:
        person = self.person(request)
        return self.engine.decide(
            person.view if person is not None else None,
            request.context,
            request.placements,
            anonymous_id=request.anonymous_id,
            withheld=person.withheld if person is not None else None,
        )

    def decide(
        self,
        *,
        placements: Sequence[str],
        user_id: str | None = None,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[Decision]:
        """Decide ``placements`` for one person; input is checked as strictly as over HTTP."""
        body: dict[str, Any] = {"placements": list(placements), "context": dict(context or {})}
        if user_id is not None:
            body["userId"] = user_id
        if anonymous_id is not None:
            body["anonymousId"] = anonymous_id
        return self.decide_request(parse_request(body))

    def report(
        self, placement: str | None = None, since: str | None = None
    ) -> list[dict[str, Any]]:
        """Per content: impressions, views, clicks, conversions and revenue."""
        return self.log.report(placement, since)

    def close(self) -> None:
        if self._own_log:
            self.log.close()
        else:
            self.log.flush()
        if self._watch is not None:
            self._watch.close()


def _watch(settings: Settings) -> FileWatch | None:
    """What tells the person cache that a store changed: the SQLite files' data versions
    (``None``, so no cache, for the memory backend or if a file is missing)."""
    paths = watched_files(settings)
    if paths is None:
        return None
    try:
        return FileWatch(paths)
    except (FileNotFoundError, sqlite3.Error):
        logger.warning("not caching profile views: cannot watch %s", paths, exc_info=True)
        return None
