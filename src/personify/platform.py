"""Wiring only: build the stores and services named by the settings (no logic here)."""

from __future__ import annotations

from personify.clock import Clock, SystemClock
from personify.config import Settings
from personify.decide.attribution import RewardAttributor
from personify.decide.log import DecisionLog
from personify.definitions import DefinitionStore, MemoryDefinitionStore, open_sqlite
from personify.events.collector import Collector
from personify.facade import Personify, Stores
from personify.identity.normalize import JunkFilter
from personify.identity.resolver import Resolver
from personify.privacy.service import Privacy
from personify.profiles.processor import Processor
from personify.segments.engine import SegmentEngine
from personify.segments.store import SegmentStore
from personify.storage import memory
from personify.storage.ports import EventLog, EventStore, ProfileStore, QuarantineStore, ScoreStore


def build_stores(
    settings: Settings,
    *,
    event_store: EventStore | None = None,
    background_writes: bool = False,
) -> Stores:
    """The stores the settings name. ``background_writes`` (the processing worker) stores
    profile and segment batches from writer processes (``personify.storage.sqlite.writer``)."""
    data = settings.data_dir
    if settings.bus_backend == "sqlite" or settings.state_backend == "sqlite":
        data.mkdir(parents=True, exist_ok=True)
    if settings.bus_backend == "sqlite":
        from personify.storage.sqlite import SqliteEventLog

        log: EventLog = SqliteEventLog(data / "log.sqlite")
    else:
        log = memory.MemoryEventLog()
    memory_state = settings.state_backend != "sqlite"
    if settings.state_backend == "sqlite":
        from personify.storage.sqlite import SqliteQuarantineStore, SqlProfileStore
        from personify.storage.sqlite.profiles import sqlite_engine
        from personify.storage.sqlite.scores import SqlScoreStore

        sql_profiles = SqlProfileStore(sqlite_engine(f"sqlite:///{data / 'state.sqlite'}"))
        profiles: ProfileStore = sql_profiles
        if background_writes:
            from personify.storage.sqlite.profile_writer import background

            profiles = background(sql_profiles)
        quarantine: QuarantineStore = SqliteQuarantineStore(data / "quarantine.sqlite")
        definitions: DefinitionStore = open_sqlite(data)
        segments = SegmentStore(data / "segments.sqlite")
        if background_writes:
            # Before anything reads it: the writer's start waits out one left by a killed
            # worker. The segment engine built on this store is its only writer.
            segments.own()
            segments.in_background()
        scores: ScoreStore = SqlScoreStore.open(data / "scores.sqlite")
    else:
        from personify.storage.memory.scores import MemoryScoreStore

        profiles = memory.MemoryProfileStore()
        quarantine = memory.MemoryQuarantineStore()
        definitions = MemoryDefinitionStore()
        segments = SegmentStore(None)
        scores = MemoryScoreStore()
    if event_store is not None:
        events: EventStore = event_store
    elif settings.event_store_backend == "duckdb":
        from personify.storage.duckdb import DuckDbEventStore

        events = DuckDbEventStore(data / "events.duckdb")
    else:
        events = memory.MemoryEventStore()
    stores = Stores(
        log=log,
        profiles=profiles,
        events=events,
        quarantine=quarantine,
        cache=memory.LruCache(settings.cache_size),
        definitions=definitions,
        segments=segments,
        scores=scores,
        decisions=DecisionLog(None if memory_state else data / "decisions.sqlite"),
    )
    if settings.privacy.encrypt_pii:
        from personify.privacy.pii import protect

        protect(stores, settings)  # seal PII in profiles, the log, events and quarantine
    return stores


def build(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    worker: bool = False,
    background_writes: bool = False,
) -> Personify:
    """A ready :class:`Personify` for these settings (processing not started).

    With ``worker=True`` (``personify serve``), processing runs in a child process that owns
    the event store; this process collects and reads. Otherwise it runs in a thread here.
    """
    settings = settings or Settings()
    clock = clock or SystemClock()
    if worker:
        return _build_api_side(settings, clock)
    stores = build_stores(settings, background_writes=background_writes)
    privacy = Privacy(settings, stores.profiles)
    junk = JunkFilter(settings.identity.junk_values)
    resolver = Resolver(
        stores.profiles,
        junk,
        phone_region=settings.identity.default_phone_region,
        trait_priority=settings.profiles.trait_source_priority,
        cache_size=settings.cache_size,
    )
    collector = Collector(
        stores.log, stores.quarantine, settings.collect, settings.write_key_sources(), junk, clock
    )
    collector.suppress = privacy.gate
    segment_engine = SegmentEngine(
        stores.segments,
        stores.definitions,
        stores.profiles,
        stores.events,
        clock,
        scores=stores.scores.get_many,
    )
    processor = Processor(
        stores.log,
        stores.profiles,
        stores.events,
        resolver,
        settings.profiles,
        clock,
        on_change=stores.forget,
        observers=[segment_engine, RewardAttributor(stores.decisions), privacy.observer],
        minimizer=privacy,
    )
    segment_engine.attach(processor.lock)
    return Personify(settings, clock, stores, collector, processor, segment_engine, privacy)


def _build_api_side(settings: Settings, clock: Clock) -> Personify:
    from personify.profiles.worker import RemoteEventStore, WorkerProcess

    base = build_stores(settings, event_store=memory.MemoryEventStore())
    junk = JunkFilter(settings.identity.junk_values)
    collector = Collector(
        base.log, base.quarantine, settings.collect, settings.write_key_sources(), junk, clock
    )
    privacy = Privacy(settings, base.profiles)  # before the worker: it creates privacy.key
    collector.suppress = privacy.gate
    worker = WorkerProcess(settings, base.profiles, base.log)
    base.events = RemoteEventStore(settings.data_dir, worker.authkey)
    return Personify(settings, clock, base, collector, worker, privacy=privacy)
