"""Scheduled retraining: churn and purchase models that drifted or aged are trained again.

:func:`retrain_due` looks at every model in the registry whose serving version scores
profiles (kind ``churn`` or ``purchase``); when :func:`~personify.models.service.retraining_due`
says so (drift at the last scoring over the PSI threshold, or older than
``models.retrain_after_days``), it trains a new version on the event store with the same
target and horizon, promotes it, scores every profile with it, and reports what it did.

It must run where the event store is open: under ``personify serve`` the processing worker
runs :class:`RetrainScheduler` every ``models.retrain_check_hours`` (with a cursor on its own
DuckDB connection); ``personify models retrain`` does the same once, on a stopped server's
data directory (e.g. from cron).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from personify.config import Settings
from personify.errors import PersonifyError
from personify.models.service import ModelService
from personify.models.training import train_events

log = logging.getLogger(__name__)
Consent = Callable[[Iterable[str]], set[str]]
SCORING_KINDS = ("churn", "purchase")


def retrain_due(
    service: ModelService,
    con: Any,
    *,
    consent: Consent | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Retrain, promote and rescore every scoring model that is due; one entry per model."""
    done: list[dict[str, Any]] = []
    for name in service.registry.names():
        try:
            report = service.report(name)
        except PersonifyError as exc:  # an unreadable version: say so, try the others
            done.append({"model": name, "retrained": False, "why": exc.message})
            continue
        if report["kind"] not in SCORING_KINDS:
            continue
        reasons = report["retraining"]["reasons"]
        if not (force or report["retraining"]["due"]):
            done.append({"model": name, "retrained": False, "why": "not due"})
            continue
        horizon = int((report.get("params") or {}).get("horizon_days", 90))
        last = con.execute('SELECT MAX("timestamp") FROM events').fetchone()[0]
        if last is None:
            done.append({"model": name, "retrained": False, "why": "the event store is empty"})
            continue
        cutoff = (pd.Timestamp(last) - pd.Timedelta(days=horizon)).isoformat()
        result = train_events(
            con,
            service.live_events(con),
            cutoff=cutoff,
            horizon_days=horizon,
            target=report["kind"],
            consent=consent,
        )
        meta = service.register(name, result, promote=True)
        scored = service.score(name, con=con, consent=consent)
        done.append(
            {
                "model": name,
                "retrained": True,
                "why": "; ".join(reasons) or "forced",
                "version": meta.version,
                "roc_auc": result.metrics.get("roc_auc"),
                "scored": scored["scored"],
            }
        )
    return done


class RetrainScheduler:
    """Runs :func:`retrain_due` every ``interval`` seconds in a thread (the worker's)."""

    def __init__(
        self,
        settings: Settings,
        connect: Callable[[], Any],
        *,
        consent: Consent | None = None,
        on_scored: Callable[[], None] | None = None,
    ) -> None:
        self._service = ModelService(settings)
        self._connect = connect
        self._consent = consent
        self._on_scored = on_scored
        self._interval = settings.models.retrain_check_hours * 3600.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: list[dict[str, Any]] = []
        self.last_error: str | None = None

    def run_once(self) -> list[dict[str, Any]]:
        con = self._connect()
        try:
            self.last = retrain_due(self._service, con, consent=self._consent)
        finally:
            con.close()
        if self._on_scored is not None and any(r["retrained"] for r in self.last):
            self._on_scored()
        return self.last

    def start(self) -> None:
        if self._interval <= 0 or self._thread is not None:
            return

        def run() -> None:
            while not self._stop.wait(self._interval):
                try:
                    for entry in self.run_once():
                        if entry["retrained"]:
                            log.info("retrained %s: %s", entry["model"], entry["why"])
                    self.last_error = None
                except Exception as exc:  # keep the schedule; report through the log
                    self.last_error = repr(exc)
                    log.exception("scheduled retraining failed")

        self._thread = threading.Thread(target=run, name="personify-retrain", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
