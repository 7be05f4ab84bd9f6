"""The models service the CLI and the API share: train, register, score, report.

It owns the paths of embedded mode (``<data_dir>/models`` for the registry,
``<data_dir>/scores.sqlite`` for scores, ``<data_dir>/events.duckdb`` read-only for batch
jobs) so the front ends stay thin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from personify.config import Settings
from personify.errors import InvalidInput, Problem
from personify.models.features import stamp_text
from personify.models.registry import ModelRegistry, ModelVersion
from personify.models.serving import ConsentCheck, ServedModel, score_all
from personify.models.training import TrainingResult

Progress = Callable[[str, int, int], None]
EXISTS_CHUNK = 500  # ids per IN (...): SQLite allows 999 parameters before 3.32


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LiveSource:
    """The event relation a batch job reads (:meth:`ModelService.live_source`) and the
    profiles ``state.sqlite`` held when it was made."""

    relation: str
    present: frozenset[str] = frozenset()
    state: Path | None = None

    def erased(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` the profile store held when this was made and holds no longer:
        profiles erased since. An id that had no document then (processing stores profiles
        after their events) is never among them.

        Only existence is read (``profile_id`` from the primary key index, in chunks under
        SQLite's parameter limit), not the documents.
        """
        held_then = [i for i in dict.fromkeys(ids) if i in self.present]
        if not held_then or self.state is None:
            return set()
        from personify.storage.sqlite.profiles import sqlite_engine

        held: set[str] = set()
        engine = sqlite_engine(f"sqlite:///{self.state}")
        try:
            with engine.connect() as con:
                for start in range(0, len(held_then), EXISTS_CHUNK):
                    chunk = held_then[start : start + EXISTS_CHUNK]
                    marks = ", ".join("?" * len(chunk))
                    rows = con.exec_driver_sql(
                        f"SELECT profile_id FROM profiles WHERE profile_id IN ({marks})",
                        tuple(chunk),
                    )
                    held.update(str(r[0]) for r in rows)
        finally:
            engine.dispose()
        return set(held_then) - held


class ModelService:
    """Registry, event source and score store for one data directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.data_dir / "models")

    # -- training ---------------------------------------------------------------------------
    def register(self, name: str, result: TrainingResult, *, promote: bool) -> ModelVersion:
        return self.registry.register(
            name,
            result.model,
            kind=result.kind,
            features=result.model.features,
            params=result.params,
            metrics=result.metrics,
            data_window=result.data_window,
            promote=promote,
        )

    def event_connection(self, online_retail: Path | None = None) -> Any:
        """A DuckDB connection whose ``events`` relation is the event store (or a file)."""
        from personify.models.sources import connect, online_retail_events, open_event_store

        if online_retail is not None:
            con = connect()
            online_retail_events(con, online_retail)
            return con
        return open_event_store(self.settings.data_dir / "events.duckdb")

    def live_events(self, con: Any) -> str:
        """The event relation to train and score on, with merged-away ids as their survivors.

        Reads the merges from ``state.sqlite`` (embedded mode); with the memory state backend
        there is nothing stored to read and the events are used as they are.
        """
        return self.live_source(con).relation

    def live_source(self, con: Any) -> LiveSource:
        """:meth:`live_events`, with the profiles the store held as it was read (the ones a
        scoring run may drop again if they are erased before it writes: ``LiveSource.erased``)."""
        from personify.models.sources import survivors_of, with_survivors

        path = self.settings.data_dir / "state.sqlite"
        if self.settings.state_backend != "sqlite" or not path.is_file():
            return LiveSource("events")
        from personify.storage.sqlite import SqlProfileStore
        from personify.storage.sqlite.profiles import sqlite_engine

        ids = [r[0] for r in con.execute("SELECT DISTINCT profile_id FROM events").fetchall()]
        store = SqlProfileStore(sqlite_engine(f"sqlite:///{path}"))
        try:
            docs = store.get_many(i for i in ids if i is not None)
            asked: set[str] = set()  # a survivor erased as it merged is asked for once
            while True:  # follow chains of merges to profiles that had no events themselves
                missing = {
                    str(d["merged_into"])
                    for d in docs.values()
                    if d.get("merged_into") and d["merged_into"] not in docs
                } - asked
                if not missing:
                    break
                asked |= missing
                docs.update(store.get_many(missing))
        finally:
            store.close()
        relation = with_survivors(con, "events", survivors_of(docs))
        return LiveSource(relation, frozenset(docs), path)

    # -- scoring ----------------------------------------------------------------------------
    def served(self, name: str, version: int | None = None) -> tuple[ServedModel, ModelVersion]:
        model, meta = self.registry.load(name, version)
        if not isinstance(model, ServedModel):
            raise InvalidInput(
                f"model {name!r} v{meta.version} is a {meta.kind} model that does not score "
                "profiles",
                hint="score with a churn or purchase model",
                problems=[Problem("name", f"kind {meta.kind}")],
            )
        return model, meta

    def score(
        self,
        name: str,
        *,
        as_of: str | None = None,
        con: Any = None,
        consent: ConsentCheck | None = None,
    ) -> dict[str, Any]:
        """Score every profile with the serving version of ``name`` into ``scores.sqlite``.

        A profile erased while this runs keeps no score (``serving.drop_erased``); one whose
        document processing had not stored yet when it began keeps its score."""
        from personify.models.value import ClvModel, score_clv
        from personify.storage.sqlite.scores import SqlScoreStore

        model, meta = self.registry.load(name)
        if not isinstance(model, ClvModel):
            model, meta = self.served(name)
        own = con is None
        con = self.event_connection() if own else con
        store = SqlScoreStore.open(self.settings.data_dir / "scores.sqlite")
        when = stamp_text(as_of or now_iso())
        try:
            live = self.live_source(con)  # before the events are read: see LiveSource.erased
            if isinstance(model, ClvModel):
                report: dict[str, Any] = score_clv(
                    model,
                    con,
                    live.relation,
                    store,
                    version=meta.version,
                    as_of=when,
                    consent=consent,
                    erased=live.erased,
                )
            else:
                report = score_all(
                    model,
                    con,
                    live.relation,
                    store,
                    name=name,
                    version=meta.version,
                    as_of=when,
                    consent=consent,
                    erased=live.erased,
                )
        finally:
            store.close()
            if own:
                con.close()
        if report.get("drift") is not None:
            self._drift_path(name, meta.version).write_bytes(
                orjson.dumps({"at": when, **report["drift"]}, option=orjson.OPT_SERIALIZE_NUMPY)
            )
        return {"model": name, "version": meta.version, **report}

    def _drift_path(self, name: str, version: int) -> Path:
        return self.registry.root / name / f"v{version}" / "drift-latest.json"

    def report(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Metadata, metrics and the most important features of one version."""
        model, meta = self.registry.load(name, version)
        body = meta.as_dict()
        if isinstance(model, ServedModel):
            body["importance"] = dict(list(model.estimator.importance().items())[:15])
            body["target"] = model.target
        drift = self._drift_path(name, meta.version)
        body["drift"] = orjson.loads(drift.read_bytes()) if drift.is_file() else None
        body["retraining"] = retraining_due(
            meta, body["drift"], max_age_days=self.settings.models.retrain_after_days
        )
        return body


def retraining_due(
    meta: ModelVersion, drift: dict[str, Any] | None, *, max_age_days: int = 30
) -> dict[str, Any]:
    """Whether a model should be retrained, and why: drift at the last scoring, or age.

    This is the check a scheduled retraining job runs before training again (there is no
    scheduler process yet; ``personify models report`` shows the answer).
    """
    reasons = []
    if drift is not None and drift.get("retrain"):
        reasons.append(f"drift over PSI {drift['threshold']}: {', '.join(drift['drifted'][:5])}")
    created = datetime.fromisoformat(meta.created_at)
    age = (datetime.now(UTC) - created).days
    if age > max_age_days:
        reasons.append(f"trained {age} days ago (more than {max_age_days})")
    return {"due": bool(reasons), "reasons": reasons}
