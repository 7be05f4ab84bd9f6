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

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from personify.config import Settings
from personify.decide.attribution import RewardAttributor
from personify.decide.engine import Decision, DecisionEngine
from personify.decide.log import DecisionLog
from personify.decide.request import DecideRequest, parse_request
from personify.definitions import DefinitionStore
from personify.errors import NotFound
from personify.facade import Personify


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

    def _products(self, profile_id: str | None, k: int, placement: str | None) -> list[Any]:
        """Product blocks are filled by the recommender from the model registry."""
        from personify.recs.serving import recommend_for

        return recommend_for(self.personify, profile_id, k, placement)

    def view(self, request: DecideRequest) -> dict[str, Any] | None:
        """The profile view of the person asking, or ``None`` for an unknown visitor."""
        for kind, value in (("user_id", request.user_id), ("anonymous_id", request.anonymous_id)):
            if value is None:
                continue
            pid = self._known.get((kind, value))
            try:
                if pid is None:
                    pid = self.personify.lookup(kind, value)
                    self._remember(kind, value, pid)
                return self.personify.profile(pid, history=False)
            except NotFound:
                self._known.pop((kind, value), None)
                continue
        return None

    def _remember(self, kind: str, value: str, pid: str) -> None:
        # An identity's profile id stays valid: Personify.profile follows merges to the
        # survivor, and a profile that is gone raises NotFound (then the entry is dropped).
        with self._lock:
            self._known[(kind, value)] = pid
            if len(self._known) > self._known_max:
                self._known.popitem(last=False)

    def decide_request(self, request: DecideRequest) -> list[Decision]:
        view = self.view(request)
        privacy = self.personify.privacy
        consent = privacy.may("personalization", view) if view and privacy else None
        return self.engine.decide(
            view,
            request.context,
            request.placements,
            anonymous_id=request.anonymous_id,
            withheld=None if consent is None or consent.allowed else consent.reason,
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
