"""``segments:`` in a workspace file: plain, template and cross-referencing entries; errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from personify.definitions import MemoryDefinitionStore
from personify.errors import InvalidInput
from personify.workspace import apply

GOOD = """
segments:
  vip:
    name: VIPs
    kind: static
    members: {user_id: [u1, u2]}
  vip_buyers:
    name: VIPs who bought
    condition: {segments: {$elemMatch: {$eq: vip}}, computed.orders: {$gte: 1}}
  lapsed:
    template: lapsing_customer
    params: {inactive_for: 60d}
    name: Lapsed (60 days)
"""


def test_segments_section_applies_and_expands_templates(tmp_path: Path) -> None:
    (tmp_path / "ws.yaml").write_text(GOOD)
    store = MemoryDefinitionStore()
    changes = apply(tmp_path / "ws.yaml", store, actor="ci")
    assert sorted((c.key, c.action) for c in changes) == [
        ("lapsed", "create"),
        ("vip", "create"),
        ("vip_buyers", "create"),
    ]
    lapsed = store.get("segment", "lapsed").body
    assert lapsed["name"] == "Lapsed (60 days)"
    assert lapsed["condition"]["$and"][1] == {"computed.last_order_at": {"$olderThan": "60d"}}
    # Applying the same file again writes nothing.
    again = apply(tmp_path / "ws.yaml", store, actor="ci")
    assert {c.action for c in again} == {"unchanged"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("segments:\n  x:\n    condition: {computed.orderz: 1}\n", "computed.orderz"),
        ("segments:\n  x:\n    condition: {segments: {$elemMatch: {$eq: ghost}}}\n", "ghost"),
        ("segments:\n  x:\n    template: nope\n", "no segment template"),
        ("segments:\n  x:\n    template: new_visitor\n    params: {days: 3}\n", "days"),
        ("segments:\n  Bad-Key:\n    condition: {}\n", "Bad-Key"),
    ],
)
def test_bad_segment_entries_write_nothing(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "ws.yaml").write_text(text)
    store = MemoryDefinitionStore()
    with pytest.raises(InvalidInput) as caught:
        apply(tmp_path / "ws.yaml", store, actor="ci")
    assert needle in str(caught.value) + " ".join(
        p.message + p.field for p in caught.value.problems
    )
    assert store.list("segment") == []
