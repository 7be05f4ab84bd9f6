"""Features from event rows: values, point-in-time correctness (no leakage), labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.unit.models.synthetic import events

from personify.errors import InvalidInput
from personify.models.features import build_features, describe_features, purchase_labels
from personify.models.sources import connect, register_frame

T = pd.Timestamp("2024-03-01", tz="UTC")


def _row(
    pid: str,
    event: str | None,
    when: pd.Timestamp,
    props: dict,
    session: str = "s1",
    kind: str = "track",
) -> dict[str, object]:
    return {
        "profile_id": pid,
        "type": kind,
        "event": event,
        "timestamp": when,
        "session_id": session,
        "payload": json.dumps({"properties": props}),
    }


def _small() -> pd.DataFrame:
    d = pd.Timedelta
    return pd.DataFrame(
        [
            _row("a", "Order Completed", T - d(days=31), {"revenue": 10.0}, "s1"),
            _row("a", "Order Completed", T - d(days=10), {"total": 30.0}, "s2"),
            _row(
                "a",
                "Order Completed",
                T - d(days=4),
                {"products": [{"price": 5, "quantity": 2}, {"price": 1}]},
                "s3",
            ),
            _row("a", "Order Refunded", T - d(days=2), {"revenue": 10.0}, "s3"),
            _row("a", "Support Ticket Opened", T - d(days=1), {}, "s4"),
            _row("a", None, T - d(days=1) + d(minutes=20), {}, "s4", kind="page"),
            _row("b", "Product Viewed", T - d(days=40), {"category": "Shoes"}, "s9"),
            _row("b", "Product Viewed", T - d(days=39), {"category": "Bags"}, "s10"),
            _row("b", "Product Viewed", T - d(days=38), {"category": "Shoes"}, "s11"),
        ]
    )


def _features(frame: pd.DataFrame, as_of: object = T) -> pd.DataFrame:
    con = connect()
    register_frame(con, frame)
    return build_features(con, "events", as_of=as_of)  # type: ignore[arg-type]


def test_rfm_order_value_and_interpurchase_features() -> None:
    f = _features(_small())
    a = f.loc["a"]
    assert a["frequency"] == 3
    assert a["monetary"] == pytest.approx(10 + 30 + 11)  # revenue, total, then products
    assert a["average_order_value"] == pytest.approx(17.0)
    assert a["recency_days"] == pytest.approx(4.0)
    assert a["interpurchase_mean_days"] == pytest.approx(13.5)
    assert a["refunds"] == 1 and a["refunded_value"] == 10.0
    assert a["support_tickets"] == 1
    assert a["sessions"] == 4
    assert a["session_minutes_mean"] == pytest.approx((2 * 24 * 60 + 20) / 4)
    assert a["n_order_completed_30d"] == 2 and a["n_order_completed_90d"] == 3
    assert a["n_page_30d"] == 1
    assert a["rfm_r"] >= 1 and a["rfm_score"] > 0


def test_non_buyers_get_zero_money_missing_recency_and_category_affinities() -> None:
    b = _features(_small()).loc["b"]
    assert b["frequency"] == 0 and b["monetary"] == 0
    assert np.isnan(b["recency_days"])
    assert b["rfm_score"] == 0
    assert b["affinity_shoes"] == pytest.approx(2 / 3)
    assert b["affinity_bags"] == pytest.approx(1 / 3)
    assert b["days_since_last_event"] == pytest.approx(38.0)


def test_a_feature_as_of_a_cutoff_ignores_events_after_it() -> None:
    """Leakage test: adding any events at or after the cutoff changes no feature."""
    before = events(customers=120, days=200, seed=3)
    cutoff = pd.Timestamp("2024-05-01", tz="UTC")
    past = before[before["timestamp"] < cutoff]
    later = before[before["timestamp"] >= cutoff]
    assert len(past) and len(later)
    extra = pd.DataFrame(
        [
            _row("p0001", "Order Completed", cutoff, {"revenue": 9999.0}),
            _row("zz_new", "Order Completed", cutoff + pd.Timedelta(days=1), {"revenue": 5.0}),
        ]
    )
    only_past = _features(past, cutoff)
    everything = _features(pd.concat([past, later, extra], ignore_index=True), cutoff)
    pd.testing.assert_frame_equal(only_past, everything)
    assert "zz_new" not in everything.index


def test_purchase_labels_look_only_inside_the_horizon() -> None:
    d = pd.Timedelta
    frame = pd.concat(
        [
            _small(),
            pd.DataFrame(
                [
                    _row("a", "Order Completed", T + d(days=89), {"revenue": 1.0}),
                    _row("b", "Order Completed", T + d(days=91), {"revenue": 1.0}),
                ]
            ),
        ],
        ignore_index=True,
    )
    con = connect()
    register_frame(con, frame)
    labels = purchase_labels(con, "events", pd.Index(["a", "b"]), cutoff=T, horizon_days=90)
    assert labels.to_dict() == {"a": 1, "b": 0}
    with pytest.raises(InvalidInput):
        purchase_labels(con, "events", pd.Index(["a"]), cutoff=T, horizon_days=0)


def test_one_profile_can_be_built_alone_with_the_same_values() -> None:
    con = connect()
    register_frame(con, _small())
    alone = build_features(con, "events", as_of=T, profile_ids=["a"])
    together = build_features(con, "events", as_of=T)
    assert list(alone.index) == ["a"]
    assert alone.loc["a", "monetary"] == together.loc["a", "monetary"]


def test_bad_inputs_are_refused_with_hints() -> None:
    con = connect()
    with pytest.raises(InvalidInput) as err:
        register_frame(con, pd.DataFrame({"profile_id": ["a"]}))
    assert {p.field for p in err.value.problems} >= {"timestamp", "payload"}
    register_frame(con, _small())
    with pytest.raises(InvalidInput):
        build_features(con, "events; DROP TABLE x", as_of=T)
    with pytest.raises(InvalidInput) as err2:
        build_features(con, "events", as_of="not a date")
    assert err2.value.hint


def test_every_declared_feature_has_a_description() -> None:
    described = {d["name"] for d in describe_features()}
    built = set(_features(_small()).columns)
    assert all(d["description"] for d in describe_features())
    assert {c for c in built if not c.startswith("affinity_")} <= described


def test_merged_away_profiles_count_as_their_survivor() -> None:
    from personify.models.sources import survivors_of, with_survivors

    docs = {
        "anon": {"merged_into": "mid"},
        "mid": {"merged_into": "live"},
        "live": {"merged_into": None},
    }
    survivors = survivors_of(docs)
    assert survivors == {"anon": "live", "mid": "live"}
    d = pd.Timedelta
    frame = pd.concat(
        [
            _small(),
            pd.DataFrame([_row("anon", "Order Completed", T - d(days=60), {"revenue": 5.0})]),
        ],
        ignore_index=True,
    )
    con = connect()
    register_frame(con, frame)
    source = with_survivors(con, "events", {"anon": "a"})
    f = build_features(con, source, as_of=T)
    assert "anon" not in f.index and f.loc["a", "frequency"] == 4
    assert with_survivors(con, "events", {}) == "events"
