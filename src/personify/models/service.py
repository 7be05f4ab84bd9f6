"""The models service the CLI and the API share: train, register, score, report.

It owns the paths of embedded mode (``<data_dir>/models`` for the registry,
``<data_dir>/scores.sqlite`` for scores, ``<data_dir>/events.duckdb`` read-only for batch
jobs) so the front ends stay thin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
        from personify.models.sources import survivors_of, with_survivors

        path = self.settings.data_dir / "state.sqlite"
        if self.settings.state_backend != "sqlite" or not path.is_file():
            return "events"
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
        return with_survivors(con, "events", survivors_of(docs))

    def stored_profiles(self) -> Callable[[Iterable[str]], set[str]] | None:
        """``ids -> those the profile store holds`` (embedded mode), read anew on each call so
        that it sees erasures that ran meanwhile; ``None`` when there is no stored state to
        read, as in :meth:`live_events`."""
        path = self.settings.data_dir / "state.sqlite"
        if self.settings.state_backend != "sqlite" or not path.is_file():
            return None

        def stored(ids: Iterable[str]) -> set[str]:
            from personify.storage.sqlite import SqlProfileStore
            from personify.storage.sqlite.profiles import sqlite_engine

            store = SqlProfileStore(sqlite_engine(f"sqlite:///{path}"))
            try:
                return set(store.get_many(ids))
            finally:
                store.close()

        return stored

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

        A profile erased while this runs keeps no score (``serving.drop_erased``)."""
        from personify.models.value import ClvModel, score_clv
        from personify.storage.sqlite.scores import SqlScoreStore

        model, meta = self.registry.load(name)
        if not isinstance(model, ClvModel):
            model, meta = self.served(name)
        own = con is None
        con = self.event_connection() if own else con
        store = SqlScoreStore.open(self.settings.data_dir / "scores.sqlite")
        when = stamp_text(as_of or now_iso())
        stored = self.stored_profiles()
        try:
            source = self.live_events(con)
            if isinstance(model, ClvModel):
                report: dict[str, Any] = score_clv(
                    model,
                    con,
                    source,
                    store,
                    version=meta.version,
                    as_of=when,
                    consent=consent,
                    stored=stored,
                )
            else:
                report = score_all(
                    model,
                    con,
                    source,
                    store,
                    name=name,
                    version=meta.version,
                    as_of=when,
                    consent=consent,
                    stored=stored,
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
