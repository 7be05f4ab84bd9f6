"""The privacy services of one engine, built from the settings by the platform.

``Privacy`` bundles the API keys, the consent history and policy, the suppression list, the
audit log and the privacy jobs. The engine holds it as ``Personify.privacy``; the collector
asks its suppression list about every message, the processor feeds its consent observer,
and every consent question goes through :meth:`Privacy.may`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personify.config import Settings
from personify.privacy.audit import AuditLog
from personify.privacy.consent import (
    CONSENT_EVENT,
    ConsentChange,
    ConsentPolicy,
    ConsentStore,
    Decision,
    changes_in_message,
)
from personify.privacy.jobs import JobStore
from personify.privacy.keys import ApiKeyStore
from personify.privacy.ratelimit import RateLimiter
from personify.privacy.secret import load_secret, pseudonym
from personify.privacy.suppression import SuppressionList
from personify.storage.ports import ProfileStore

if TYPE_CHECKING:
    from personify.facade import Personify

log = logging.getLogger(__name__)
FILES = ("keys.sqlite", "consent.sqlite", "suppression.sqlite", "audit.sqlite", "jobs.sqlite")


class Privacy:
    def __init__(self, settings: Settings, profiles: ProfileStore) -> None:
        durable = settings.state_backend == "sqlite"
        data = settings.data_dir if durable else None

        def at(name: str) -> Path | None:
            return data / name if data is not None else None

        conf = settings.privacy
        self.settings = settings
        self.secret = load_secret(conf.secret, data)
        self.keys = ApiKeyStore(at("keys.sqlite"))
        self.consent_store = ConsentStore(at("consent.sqlite"))
        self.consent = ConsentPolicy(
            self.consent_store, conf.consent_defaults, conf.regions, profiles
        )
        self.suppression = SuppressionList(
            at("suppression.sqlite"), self.secret, settings.identity.default_phone_region
        )
        self.audit = AuditLog(at("audit.sqlite"))
        self.jobs = JobStore(at("jobs.sqlite"))
        self.limiter = RateLimiter(conf.rate_per_second, conf.rate_burst)
        self.observer = ConsentObserver(self.consent_store)
        allow = conf.trait_allowlist
        self._allowed_traits = None if allow is None else frozenset([*allow, "consent"])
        self.dropped_traits = 0
        self.minimized = 0
        self._retention: threading.Thread | None = None
        self._stop = threading.Event()

    def gate(self, msg: dict[str, Any]) -> bool:
        """The collector's privacy check for each valid message, before it is stored.

        Returns True to drop the message (it names a suppressed identity). Otherwise it
        applies data minimization in place: traits not on ``privacy.trait_allowlist`` are
        removed (and counted in ``dropped_traits``).
        """
        if self.suppression.matches(msg):
            return True
        if analytics_refused(msg):
            self.minimize(msg)
        if self._allowed_traits is not None:
            context = msg.get("context")
            for traits in (
                msg.get("traits"),
                context.get("traits") if isinstance(context, dict) else None,
            ):
                if isinstance(traits, dict):
                    extra = [k for k in traits if k not in self._allowed_traits]
                    for key in extra:
                        del traits[key]
                    self.dropped_traits += len(extra)
        return False

    def start(self, engine: Personify) -> None:
        """Start the retention schedule if any retention period is set (the server does)."""
        conf = self.settings.privacy
        wanted = conf.retention_days or conf.quarantine_retention_days
        if not (wanted or conf.decision_retention_days) or self._retention is not None:
            return
        self._stop.clear()
        self._retention = threading.Thread(
            target=self._retain, args=(engine,), name="privacy-retention", daemon=True
        )
        self._retention.start()

    def _retain(self, engine: Personify) -> None:
        from personify.privacy.retention import purge

        while not self._stop.is_set():
            try:
                purge(engine)
            except Exception as exc:  # recorded; the next run tries again
                log.exception("retention run failed")
                self.audit.record(
                    "retention", "privacy.retention.failed", None, {"error": repr(exc)}
                )
            self._stop.wait(self.settings.privacy.retention_interval_s)

    def minimize(self, msg: dict[str, Any]) -> None:
        """Keep only the minimal form of an event whose consent refuses analytics: no
        context but the consent itself, only ``privacy.minimal_properties``, and the
        anonymous id replaced by its pseudonym (stable, so the visit still holds together).

        The collector applies it to a message that refuses analytics itself; the processor
        (:meth:`refusing_analytics`) to the events of people whose consent refuses it."""
        context = msg.get("context")
        consent = context.get("consent") if isinstance(context, dict) else None
        msg["context"] = {"consent": consent}
        props = msg.get("properties")
        if isinstance(props, dict) and msg.get("event") != CONSENT_EVENT:  # consent is kept
            keep = set(self.settings.privacy.minimal_properties)
            msg["properties"] = {k: v for k, v in props.items() if k in keep}
        anon = msg.get("anonymousId")
        if isinstance(anon, str) and not anon.startswith("pseudo:"):
            msg["anonymousId"] = "pseudo:" + self.pseudonym("anonymous_id", anon)[:32]
        self.minimized += 1

    def refusing_analytics(
        self, docs: Mapping[str, Mapping[str, Any]], messages: Iterable[tuple[str, Any]]
    ) -> set[str]:
        """The profiles among ``docs`` whose events must be stored minimized: analytics
        refused by their recorded consent, by a choice in ``messages`` (``(profile id,
        message)`` being processed, in order), or by their region's opt-in default."""
        pending: dict[str, bool] = {}
        for pid, msg in messages:
            # only identifies and consent events carry choices (a cheap test first)
            if msg.get("type") == "identify" or msg.get("event") == CONSENT_EVENT:
                for change in changes_in_message(msg):
                    if change.purpose == "analytics":
                        pending[pid] = change.granted
        return self.consent.refusing("analytics", docs, pending)

    def may(self, purpose: str, profile: Mapping[str, Any] | str) -> Decision:
        """May ``purpose`` use this profile now? (The one consent question; see consent.py.)"""
        return self.consent.may(purpose, profile)

    def consent_check(self, purpose: str) -> Callable[[Iterable[str]], set[str]]:
        """``ids -> allowed ids`` for batch callers: the ``consent=`` argument of model
        scoring (``personify.models``) and training-set builders."""
        return lambda ids: self.consent.allowed(purpose, ids)

    def pseudonym(self, kind: str, value: str) -> str:
        return pseudonym(self.secret, kind, value)

    def close(self) -> None:
        self._stop.set()
        if self._retention is not None:
            self._retention.join(timeout=30)
            self._retention = None
        for store in (self.keys, self.consent_store, self.suppression, self.audit, self.jobs):
            store.close()


def analytics_refused(msg: Mapping[str, Any]) -> bool:
    """Whether a message's own consent context refuses analytics: Segment's consent
    object ``context.consent.categoryPreferences`` (or ``purposes``) with
    ``analytics: false``, as consent-management platforms attach to every event."""
    context = msg.get("context")
    consent = context.get("consent") if isinstance(context, Mapping) else None
    if not isinstance(consent, Mapping):
        return False
    for key in ("categoryPreferences", "purposes"):
        prefs = consent.get(key)
        if isinstance(prefs, Mapping) and prefs.get("analytics") is False:
            return True
    return False


class ConsentObserver:
    """Records consent carried by processed events (identify ``consent`` traits and
    ``Consent Updated`` events) against the profile they resolved to."""

    name = "consent"

    def __init__(self, store: ConsentStore) -> None:
        self._store = store

    def checkpoint(self) -> int:
        return self._store.checkpoint(self.name)

    def observe(
        self, events: Sequence[Any], profiles: Mapping[str, dict[str, Any]], checkpoint: int
    ) -> None:
        del profiles  # consent is stored per profile id; documents are not needed
        entries: list[tuple[str, ConsentChange]] = [
            (e.profile_id, change)
            for e in events
            if e.profile_id != "unresolved"
            for change in changes_in_message(e.message)
        ]
        self._store.record(entries, checkpoint=(self.name, checkpoint))
