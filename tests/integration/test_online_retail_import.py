"""The full UCI Online Retail file imports through validation and identity resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from personify.config import Settings
from personify.events.importers.base import ImportProblem
from personify.events.importers.online_retail import OnlineRetailConverter
from personify.platform import build

pytestmark = [pytest.mark.datasets, pytest.mark.slow]


def test_online_retail_import_matches_the_published_facts(
    datasets_dir: Path, tmp_path: Path
) -> None:
    path = datasets_dir / "online_retail" / "online_retail.parquet"
    p = build(Settings(data_dir=tmp_path, write_keys="k"))
    try:
        converter = OnlineRetailConverter(path)
        items = list(converter.messages())
        assert not [i for i in items if isinstance(i, ImportProblem)]
        result = p.ingest(items, "import:online_retail")
        p.drain()
        assert result.accepted == 4_372 + 25_900 and not result.quarantined
        # Known customers plus one anonymous profile per guest invoice.
        guests = converter.stats.extra["invoices"] - len(
            {
                m["properties"]["order_id"]
                for m in items
                if isinstance(m, dict) and m.get("userId") and m["type"] == "track"
            }
        )
        assert p.stores.profiles.count() == 4_372 + guests
        assert p.stores.events.count() == p.stores.events.count_distinct_messages() == 30_272
        profile = p.profile_by("user_id", "12346")  # one order of 74,215 units, then refunded
        assert profile["computed"]["orders"] == 1 and profile["computed"]["refunds"] == 1
        assert profile["computed"]["revenue"] == pytest.approx(0.0)
        assert profile["traits"]["country"]["value"] == "United Kingdom"
        # Re-importing the same file is idempotent: every message id is already known.
        again = p.ingest(OnlineRetailConverter(path).messages(), "import:online_retail")
        assert again.accepted == 0 and again.duplicates == 30_272
    finally:
        p.close()
