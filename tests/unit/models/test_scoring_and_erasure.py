"""A scoring run reads the profiles' events long before it writes their scores: a profile
erased in between must not get a score written back after the erasure deleted its scores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.unit.models.synthetic import events

from personify.clock import FixedClock
from personify.config import Settings
from personify.models.service import ModelService
from personify.models.serving import ServedModel
from personify.models.training import train_events
from personify.platform import build
from personify.privacy.subject import erase

NOW = datetime(2024, 11, 1, tzinfo=UTC)


def test_a_profile_erased_while_scoring_runs_keeps_no_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        data_dir=tmp_path, bus_backend="memory", write_keys="wk=web", admin_key="admin"
    )
    p = build(settings, FixedClock(NOW))
    reader = getattr(p.stores.events, "reader", None)
    assert reader is not None
    con = reader()
    try:
        for r in events(customers=120, days=300, seed=11).to_dict("records"):
            user, stamp = f"user-{r['profile_id']}", r["timestamp"].isoformat()
            if r["type"] == "page":
                p.page(user_id=user, name="Home", timestamp=stamp)
            else:
                props = json.loads(r["payload"])["properties"]
                p.track(user_id=user, event=r["event"], properties=props, timestamp=stamp)
        p.drain()
        service = ModelService(settings)
        service.register("churn", train_events(con, "events", cutoff="2024-08-01"), promote=True)
        erased, kept = p.lookup("user_id", "user-p0001"), p.lookup("user_id", "user-p0002")

        predict = ServedModel.predict
        summaries: list[dict[str, int]] = []

        def erase_meanwhile(model: ServedModel, frame: Any) -> np.ndarray[Any, Any]:
            summaries.append(erase(p, "user_id", "user-p0001"))  # the features are read
            return predict(model, frame)

        monkeypatch.setattr(ServedModel, "predict", erase_meanwhile)
        report = service.score("churn", as_of=NOW.isoformat(), con=con)

        assert summaries and summaries[0]["profiles"] == 1
        assert p.stores.scores.get_many([erased]) == {}
        assert "churn" in p.stores.scores.get_many([kept])[kept]
        assert report["scored"] == p.stores.scores.count("churn") == 119
    finally:
        con.close()
        p.close()


@pytest.mark.timeout(30)
def test_a_profile_merged_into_an_erased_one_does_not_stall_scoring(tmp_path: Path) -> None:
    """An erasure racing a merge can leave a merged-away profile pointing at an erased
    survivor (see ``personify.privacy.subject``); scoring reads past it."""
    settings = Settings(
        data_dir=tmp_path, bus_backend="memory", write_keys="wk=web", admin_key="admin"
    )
    p = build(settings, FixedClock(NOW))
    reader = getattr(p.stores.events, "reader", None)
    assert reader is not None
    con = reader()
    try:
        p.page(anonymous_id="anon-1", name="Home", timestamp="2024-10-01T10:00:00Z")
        p.identify(user_id="u1", timestamp="2024-10-02T10:00:00Z")
        p.identify(user_id="u1", anonymous_id="anon-1", timestamp="2024-10-03T10:00:00Z")
        p.drain()
        survivor = p.lookup("user_id", "u1")
        p.stores.profiles.delete_profiles([survivor])
        ModelService(settings).live_events(con)
    finally:
        con.close()
        p.close()
