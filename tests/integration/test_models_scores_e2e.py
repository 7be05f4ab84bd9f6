"""End to end: events collected -> churn model trained -> batch scores -> a segment condition
and a decision rule read ``scores.churn`` from the profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from tests.unit.models.synthetic import events

from personify.clock import FixedClock
from personify.config import Settings
from personify.decide.engine import decision_document
from personify.decide.rules import compile_rules
from personify.models.service import ModelService
from personify.models.training import train_events
from personify.platform import build

NOW = datetime(2024, 11, 1, tzinfo=UTC)
RISKY = {
    "key": "churn_risk",
    "name": "Likely to churn",
    "condition": {"scores.churn": {"$gt": 0.8}},
}


def _collect(settings: Settings) -> None:
    p = build(settings, FixedClock(NOW))
    frame = events(customers=150, days=300, seed=11)
    for r in frame.to_dict("records"):
        props = json.loads(r["payload"])["properties"]
        stamp = r["timestamp"].isoformat()
        user = f"user-{r['profile_id']}"
        if r["type"] == "page":
            p.page(user_id=user, name="Home", timestamp=stamp)
        else:
            p.track(user_id=user, event=r["event"], properties=props, timestamp=stamp)
    # One customer browsed anonymously first; an identify later merges that profile into
    # theirs, and batch features must count the anonymous events as theirs.
    for day in (5, 6, 7):
        p.page(anonymous_id="anon-1", name="Home", timestamp=f"2024-01-0{day}T10:00:00Z")
    p.identify(user_id="user-p0000", anonymous_id="anon-1", timestamp="2024-01-08T10:00:00Z")
    p.drain()
    p.close()


def test_a_batch_score_drives_a_segment_and_a_decision_rule(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, bus_backend="memory", write_keys="wk=web", admin_key="admin"
    )
    _collect(settings)

    service = ModelService(settings)
    con = service.event_connection()
    try:
        result = train_events(con, "events", cutoff="2024-08-01", horizon_days=60)
        service.register("churn", result, promote=True)
        report = service.score("churn", as_of=NOW.isoformat(), con=con)
    finally:
        con.close()
    assert report["scored"] == 150  # the anonymous profile counts as its survivor

    p = build(settings, FixedClock(NOW))
    try:
        views = {u: p.profile_by("user_id", f"user-p{u:04d}") for u in range(150)}
        assert views[0]["merged_from"]
        churn = pd.Series({u: v["scores"]["churn"]["value"] for u, v in views.items()})
        risky, safe = churn.idxmax(), churn.idxmin()
        assert churn[risky] > 0.8 > churn[safe]
        assert views[risky]["scores"]["churn"]["version"] == 1

        p.stores.definitions.put("segment", RISKY["key"], RISKY, actor="test")
        assert p.segment_engine is not None
        p.segment_engine.reload()
        p.segment_engine.refresh([views[risky]["profile_id"], views[safe]["profile_id"]])
        assert "churn_risk" in p.profile(views[risky]["profile_id"])["segments"]
        assert "churn_risk" not in p.profile(views[safe]["profile_id"])["segments"]

        rules = compile_rules(
            "home_hero",
            1,
            [{"id": "retention", "when": {"scores.churn": {"$gt": 0.8}}, "show": "winback"}],
            ["winback"],
            lambda _key: {},
        )
        when = rules.rules[0].when
        assert when is not None
        assert when(decision_document(p.profile(views[risky]["profile_id"]), {}, NOW))
        assert not when(decision_document(p.profile(views[safe]["profile_id"]), {}, NOW))
    finally:
        p.close()
