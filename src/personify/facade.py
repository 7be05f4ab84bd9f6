"""The Python API: everything the HTTP API does is a plain call on :class:`Personify`.

>>> from personify import Settings
>>> from personify.platform import build
>>> p = build(Settings(state_backend="memory", event_store_backend="memory",
...                    bus_backend="memory", write_keys="k"))
>>> _ = p.track(user_id="u1", event="Signed Up")
>>> p.drain()
>>> p.profile_by("user_id", "u1")["computed"]["event_counts"]
{'Signed Up': 1}
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from personify.clock import Clock
from personify.config import Settings
from personify.decide.log import DecisionLog
from personify.definitions import DefinitionStore
from personify.errors import InvalidInput, NotFound, Unavailable
from personify.events.backpressure import DrainRate
from personify.events.collector import BatchResult, Collector
from personify.identity.normalize import normalize_email, normalize_phone
from personify.profiles.processor import Processing, Processor
from personify.profiles.records import iso, lifecycle_stage
from personify.segments.engine import SegmentEngine
from personify.segments.store import SegmentStore
from personify.storage.ports import (
    Cache,
    EventLog,
    EventStore,
    ProfileStore,
    QuarantineStore,
    ScoreStore,
)

if TYPE_CHECKING:
    from personify.privacy.service import Privacy

LOOKUP_KINDS = ("user_id", "anonymous_id", "email", "phone")
# Sources of the table importers, which build their own messages (an Online Retail invoice
# carries all its lines and may pass 32 KB). Everything else (HTTP, NDJSON files) is held to
# the per-message size limit, when replayed too.
ONLINE_RETAIL_SOURCE = "import:online_retail"
CUSTOMER_CSV_SOURCE = "import:csv"
BUILT_MESSAGE_SOURCES = frozenset({ONLINE_RETAIL_SOURCE, CUSTOMER_CSV_SOURCE})


@dataclass
class Stores:
    log: EventLog
    profiles: ProfileStore
    events: EventStore
    quarantine: QuarantineStore
    cache: Cache
    definitions: DefinitionStore
    segments: SegmentStore
    scores: ScoreStore
    decisions: DecisionLog

    def forget(self, profile_ids: Iterable[str]) -> None:
        for pid in profile_ids:
            self.cache.delete(pid)

    def close(self) -> None:
        for store in (
            self.log,
            self.profiles,
            self.events,
            self.quarantine,
            self.definitions,
            self.segments,
            self.scores,
            self.decisions,
        ):
            store.close()


class Personify:
    """The engine in one object. Build it with :func:`personify.platform.build`."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        stores: Stores,
        collector: Collector,
        processor: Processing,
        segment_engine: SegmentEngine | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self.settings = settings
        # consent, keys, suppression, audit (``personify.privacy``); None only in bare tests
        self.privacy = privacy
        self.clock = clock
        self.stores = stores
        self.collector = collector
        self.processor = processor
        # The segment engine runs where processing runs (here, or in the worker process).
        self.segment_engine = segment_engine
        # Cached profile views are invalidated by the processor's callback, which only
        # reaches this process when processing runs here.
        self._cache_views = isinstance(processor, Processor)
        self._drain = DrainRate()  # the processor's recent rate, for backpressure in time
        self._admitted = 0  # messages of admitted requests not yet in the log (event loop only)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start background processing and the segment scheduler (the server does this)."""
        self.processor.start()
        if self.segment_engine is not None:
            self.segment_engine.start()
        if self.privacy is not None:  # the retention schedule (when periods are set)
            self.privacy.start(self)

    def drain(self, timeout: float = 600.0) -> None:
        """Process everything accepted so far (in the calling thread if not started)."""
        self.processor.drain(timeout)

    def close(self) -> None:
        self.processor.stop()
        if self.segment_engine is not None:
            self.segment_engine.stop()
        self.stores.close()
        if self.privacy is not None:
            self.privacy.close()

    def __enter__(self) -> Personify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collection -------------------------------------------------------------------------
    async def wait_for_capacity(self) -> None:
        """Backpressure for the HTTP collector: wait while the processor is too far behind,
        in messages (``collect.max_processing_lag``) or in time at its recent rate
        (``collect.max_processing_delay_s``, see :mod:`personify.events.backpressure`).

        Raises :class:`Unavailable` (503, clients retry) if it stays behind for too long.
        Nothing has been accepted at that point, so nothing is lost.
        """
        limits = self.settings.collect
        processor, drain = self.processor, self._drain
        if not processor.running:
            return

        def behind() -> int:
            lag = processor.lag()
            drain.observe(processor.position, lag)
            allowed = drain.limit(limits.max_processing_lag, limits.max_processing_delay_s, 1000)
            queued = lag + self._admitted  # with what concurrent requests are storing now
            return queued if queued > allowed else 0

        if not behind():
            return
        deadline = time.monotonic() + limits.backpressure_timeout_s
        while lag := behind():
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"profile processing is {lag} messages behind",
                    hint="retry with backoff (Segment SDKs do this on 503)",
                )
            await asyncio.sleep(0.005)

    @asynccontextmanager
    async def admitted(self, size: int = 1) -> AsyncIterator[None]:
        """:meth:`wait_for_capacity`, then count these ``size`` messages as queued until the
        block ends (by then they are in the log), so that requests admitted at the same time
        do not each add a full batch to a backlog that was just under the limit."""
        await self.wait_for_capacity()
        self._admitted += size
        try:
            yield
        finally:
            self._admitted -= size

    def send(self, kind: str, message: Mapping[str, Any], source: str = "python") -> dict[str, Any]:
        """Accept one Segment message of ``kind`` (raises :class:`InvalidInput` if invalid)."""
        return self.collector.accept_one(message, kind, source)

    def track(
        self,
        *,
        event: str,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        return self.send(
            "track",
            _message(
                user_id, anonymous_id, event=event, properties=dict(properties or {}), **fields
            ),
        )

    def identify(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        return self.send(
            "identify", _message(user_id, anonymous_id, traits=dict(traits or {}), **fields)
        )

    def page(
        self,
        *,
        name: str | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        return self.send("page", _message(user_id, anonymous_id, name=name, **fields))

    def alias(self, *, user_id: str, previous_id: str, **fields: Any) -> dict[str, Any]:
        return self.send("alias", _message(user_id, None, previousId=previous_id, **fields))

    def ingest(
        self,
        messages: Iterable[object],
        source: str,
        *,
        batch_size: int = 1000,
        check_size: bool = False,
        locate: Callable[[int], str] | None = None,
    ) -> BatchResult:
        """Accept many raw messages (importers): valid ones durable, invalid ones quarantined.

        ``locate`` names the message at a 0-based position in ``messages`` the way its file
        does (e.g. ``"line 1303"``); problems then read ``line 1303: timestamp ...`` rather
        than the position inside an internal chunk. A quarantined item's ``index`` is always
        its position in ``messages``.

        >>> lines = [4, 9]  # the file lines the two messages came from
        >>> p.ingest([{}, {}], "import", locate=lambda i: f"line {lines[i]}")  # doctest: +SKIP
        """
        total = BatchResult()
        offset = 0
        for chunk in _chunks(messages, batch_size):
            named = None if locate is None else (lambda i, at=offset: locate(at + i))
            result = self.collector.accept_batch(chunk, source, check_size=check_size, locate=named)
            total.accepted += result.accepted
            total.duplicates += result.duplicates
            for item in result.quarantined:
                item["index"] += offset
                total.quarantined.append(item)
            offset += len(chunk)
        return total

    # -- profiles ---------------------------------------------------------------------------
    def lookup(self, kind: str, value: str) -> str:
        """The surviving profile id for an identity (raises :class:`NotFound`)."""
        if kind not in LOOKUP_KINDS:
            raise InvalidInput(f"cannot look up by {kind!r}; use one of {', '.join(LOOKUP_KINDS)}")
        key_value: str | None = value.strip()
        if kind == "email":
            key_value = normalize_email(value)
        elif kind == "phone":
            key_value = normalize_phone(value, self.settings.identity.default_phone_region)
        if not key_value:
            raise InvalidInput(f"{value!r} is not a valid {kind}")
        pid = self.stores.profiles.lookup_many([(kind, key_value)]).get((kind, key_value))
        if pid is None:
            raise NotFound(
                f"no profile has {kind} {value!r}",
                hint="events are processed within seconds; retry shortly",
            )
        return pid  # identities move to the survivor on merge, so this profile is live

    def _live(self, pid: str) -> dict[str, Any]:
        """The live profile document for an id, following merges."""
        for _ in range(64):
            doc = self.stores.profiles.get_many([pid]).get(pid)
            if doc is None:
                raise NotFound(f"no profile {pid!r}", hint="look it up by an identity instead")
            if not doc.get("merged_into"):
                return doc
            pid = doc["merged_into"]
        raise NotFound(f"profile {pid!r} has a merge chain too long to follow")

    def _survivor(self, pid: str) -> str:
        return str(self._live(pid)["profile_id"])

    def profile(
        self, profile_id: str, *, history: bool = True, cached: bool = True
    ) -> dict[str, Any]:
        """The unified profile (an id merged away resolves to the surviving profile).

        ``history=False`` leaves out the merge and conflict history (two queries fewer; the
        decision path does not need it). ``cached=False`` reads the stores even when this
        process caches views: the processor forgets a view only after it committed the
        change, so a caller that keeps views of its own must not copy one from that moment.
        """
        use_cache = self._cache_views and cached
        hit = self.stores.cache.get(profile_id) if use_cache else None
        if hit is not None:
            assert isinstance(hit, dict)
            return self._derived(hit)
        doc = self._live(profile_id)
        view = self._view(doc, history=history or use_cache)
        if use_cache and doc["profile_id"] == profile_id:
            self.stores.cache.set(profile_id, view)
        return self._derived(view)

    def _derived(self, view: dict[str, Any]) -> dict[str, Any]:
        """The view plus what other writers keep (memberships, scores): never cached, as the
        segment scheduler and batch scoring change them without touching the profile."""
        pid = view["profile_id"]
        derived = {
            **view,
            "segments": sorted(self.stores.segments.memberships_of(pid)),
            "scores": self.stores.scores.get_many([pid]).get(pid, {}),
        }
        if self.privacy is not None:  # so conditions can read consent.<purpose>
            derived["consent"] = self.privacy.consent.current(view)
        return derived

    def profile_by(self, kind: str, value: str) -> dict[str, Any]:
        return self.profile(self.lookup(kind, value))

    @staticmethod
    def one_identity(given: Mapping[str, str | None], example: str) -> tuple[str, str]:
        """The single ``(kind, value)`` among the given identities, or a clear error."""
        present = [(k, v) for k, v in given.items() if v]
        if len(present) != 1:
            raise InvalidInput(
                f"give exactly one of {', '.join(LOOKUP_KINDS)} (got {len(present)})",
                hint=f"for example {example}",
            )
        return present[0][0], str(present[0][1])

    def _view(self, doc: dict[str, Any], history: bool = True) -> dict[str, Any]:
        pid = doc["profile_id"]
        computed = dict(doc["computed"])
        p = self.settings.profiles
        computed["lifecycle_stage"] = lifecycle_stage(
            doc, self.clock.now(), p.lapsing_after_days, p.churned_after_days
        )
        return {
            "profile_id": doc["profile_id"],
            "created_at": doc["created_at"],
            "updated_at": doc["updated_at"],
            "identities": doc["identities"],
            "traits": doc["traits"],
            "computed": computed,
            "groups": doc["groups"],
            "merged_from": doc["merged_from"],
            "history": self.stores.profiles.history(pid) if history else None,
        }

    def timeline(
        self, profile_id: str, limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest-first events of a profile, including those of profiles merged into it."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        doc = self._live(profile_id)
        rows = self.stores.events.timeline([doc["profile_id"], *doc["merged_from"]], limit, before)
        for row in rows:
            message = orjson.loads(row.pop("payload"))
            message.pop("_meta", None)
            row["properties"] = message.get("properties", {})
            row["traits"] = message.get("traits", {})
            row["context"] = message.get("context", {})
        return rows

    # -- quarantine ---------------------------------------------------------------------------
    def quarantined(
        self, status: str | None = "quarantined", limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        return self.stores.quarantine.list(status, limit, offset)

    def replay(self, item_id: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate a quarantined message again (optionally corrected) and accept it if valid.

        The stored item changes only when the replay succeeds: a corrected ``payload`` that is
        still invalid is answered with its problems and the original payload and reason stay.
        An import line that never parsed (``{"_line", "_raw"}``) needs a corrected ``payload``.
        The per-message size limit applies as it did when the item came in (not to messages
        the table importers built: :data:`BUILT_MESSAGE_SOURCES`).
        """
        item = self.stores.quarantine.get(item_id)
        if item is None:
            raise NotFound(
                f"no quarantined message {item_id!r}",
                hint="list them with `personify quarantine list`",
            )
        if item["status"] == "replayed":
            return {"id": item_id, "status": "replayed", "accepted": 0}
        if payload is None and _is_raw_line(item["payload"]):
            return _raw_line_answer(item)
        raw = dict(payload) if payload is not None else item["payload"]
        try:
            msg = self.collector.normalize(
                raw,
                source=item["source"] or "replay",
                received_at=datetime.fromisoformat(item["received_at"]),
                check_size=item["source"] not in BUILT_MESSAGE_SOURCES,
            )
        except InvalidInput as exc:
            # Nothing is written: a bad correction must not replace the original message.
            return {
                "id": item_id,
                "status": "quarantined",
                "reason": exc.message,
                "problems": [p.as_dict() for p in exc.problems],
            }
        new = self.stores.log.publish([(msg["messageId"], orjson.dumps(msg))])
        self.stores.quarantine.update(
            item_id, status="replayed", payload=raw, replayed_at=iso(self.clock.now())
        )
        return {"id": item_id, "status": "replayed", "accepted": new}

    def stats(self) -> dict[str, Any]:
        return {
            "log_head": self.stores.log.head(),
            "processed_up_to": self.processor.position,
            "lag": self.processor.lag(),
            "profiles": self.stores.profiles.count(),
            "events": self.stores.events.count(),
            "quarantined": self.stores.quarantine.count(),
            "processor_error": self.processor.last_error or self._worker_error(),
        }

    def _worker_error(self) -> str | None:
        """Under ``serve``, a batch failing inside the worker (an observer, say) leaves the
        supervisor's error empty and the profile checkpoint moving: ask the worker."""
        status = getattr(self.stores.events, "processing_status", None)
        if status is None:
            return None
        try:
            error = status().get("error")
        except Unavailable as exc:
            return exc.message
        return None if error is None else str(error)


def _message(user_id: str | None, anonymous_id: str | None, **fields: Any) -> dict[str, Any]:
    out = {k: v for k, v in fields.items() if v is not None}
    if user_id is not None:
        out["userId"] = user_id
    if anonymous_id is not None:
        out["anonymousId"] = anonymous_id
    return out


def _is_raw_line(payload: object) -> bool:
    """Whether a quarantined payload is an import line that never became a message."""
    return isinstance(payload, dict) and set(payload) == {"_line", "_raw"}


def _raw_line_answer(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "status": "quarantined",
        "reason": f"this item is a raw import line, not a message ({item['reason']}); "
        "it needs a corrected payload to be replayed",
        "problems": [{"field": "payload", "message": "a corrected Segment message is required"}],
        "needs_payload": True,
    }


def _chunks(items: Iterable[object], size: int) -> Iterator[list[object]]:
    chunk: list[object] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
