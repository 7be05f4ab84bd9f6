"""Retention: purge events and quarantined payloads older than their configured period.

``privacy.retention_days`` gives days per track event name, with ``"*"`` for every other
message; a specific name is never purged by the ``"*"`` rule, so ``{"Order Completed":
3650, "*": 365}`` keeps orders ten years and everything else one. Purged events leave the
event store (in the worker under ``serve``) and their log payloads become tombstones, as in
an erasure; expired quarantine items keep only their id, time and status ``expired``.
Run it from cron or a scheduler: ``personify privacy retention`` or
``POST /v1/privacy/retention``.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from personify.errors import InvalidInput, Problem
from personify.privacy.db import scrub
from personify.profiles.records import iso

if TYPE_CHECKING:
    from personify.facade import Personify

_SCRUBBED = ("log.sqlite", "quarantine.sqlite", "decisions.sqlite")


def check_rules(rules: dict[str, int]) -> None:
    """Every period must be at least one day (0 would purge everything at once)."""
    bad = [
        Problem(f"privacy.retention_days.{name}", f"{days!r} is not a number of days >= 1")
        for name, days in rules.items()
        if isinstance(days, bool) or not isinstance(days, int) or days < 1
    ]
    if bad:
        raise InvalidInput(
            "invalid retention periods",
            hint="for example PERSONIFY_PRIVACY__RETENTION_DAYS='{\"*\": 730}'",
            problems=bad,
        )


def purge(p: Personify, now: datetime | None = None, actor: str = "retention") -> dict[str, int]:
    """Apply the retention settings now; returns what was removed, per rule and store."""
    conf = p.settings.privacy
    rules = dict(conf.retention_days)
    check_rules(rules)
    now = now or p.clock.now()
    report: dict[str, int] = {}
    removed: list[str] = []
    specific = {name: days for name, days in rules.items() if name != "*"}
    for name, days in specific.items():
        ids = p.stores.events.delete_before(iso(now - timedelta(days=days)), [name])
        report[f"events:{name}"] = len(ids)
        removed += ids
    if "*" in rules:
        cutoff = iso(now - timedelta(days=rules["*"]))
        ids = p.stores.events.delete_before(cutoff, None, keep=list(specific))
        report["events:*"] = len(ids)
        removed += ids
    report["log_messages"] = p.stores.log.redact(removed) if removed else 0
    report["quarantined"] = _expire_quarantine(p, now, conf.quarantine_retention_days)
    report["decisions"] = _expire_decisions(p, now, conf.decision_retention_days)
    if any(report.values()) and p.settings.state_backend == "sqlite" and conf.vacuum_after_erase:
        for name in _SCRUBBED:
            scrub(p.settings.data_dir / name)
    if p.privacy is not None:
        p.privacy.audit.record(actor, "privacy.retention", None, report)
    return report


def _expire_quarantine(p: Personify, now: datetime, days: int | None) -> int:
    if days is None:
        return 0
    cutoff = iso(now - timedelta(days=days))
    store = p.stores.quarantine
    expired: list[str] = []
    offset = 0
    while True:
        page = store.list(None, 1000, offset)
        if not page:
            break
        offset += len(page)
        expired += [
            str(i["id"]) for i in page if i["received_at"] < cutoff and i["status"] != "expired"
        ]
    for item_id in expired:
        store.update(item_id, status="expired", payload={}, problems=[], reason="retention")
    return len(expired)


def _expire_decisions(p: Personify, now: datetime, days: int | None) -> int:
    """Delete decisions older than ``days`` and their rewards (``decisions.sqlite``)."""
    path = p.settings.data_dir / "decisions.sqlite"
    if days is None or p.settings.state_backend != "sqlite" or not path.exists():
        return 0
    p.stores.decisions.flush()
    cutoff = iso(now - timedelta(days=days))
    con = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    try:
        con.execute("PRAGMA secure_delete=ON")
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(
                "DELETE FROM rewards WHERE decision_id IN "
                "(SELECT decision_id FROM decisions WHERE at < ?)",
                (cutoff,),
            )
            removed = con.execute("DELETE FROM decisions WHERE at < ?", (cutoff,)).rowcount
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(removed)
    finally:
        con.close()
