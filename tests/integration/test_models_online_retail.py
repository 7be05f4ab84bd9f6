"""Online Retail: repeat-purchase / churn model on a time split beats recency alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from personify.models.sources import connect, online_retail_events
from personify.models.training import train_events

pytestmark = [pytest.mark.datasets]


def test_churn_model_beats_the_recency_baseline(datasets_dir: Path) -> None:
    con = connect()
    online_retail_events(con, datasets_dir / "online_retail" / "online_retail.parquet")
    result = train_events(con, "events", cutoff="2011-09-01", horizon_days=90, target="churn")
    m = result.metrics
    assert m["test_rows"] == 3360  # customers with history before the cutoff
    assert m["roc_auc"] > m["recency_roc_auc"] + 0.02
    assert m["roc_auc"] > 0.72
    assert m["lift"][0]["lift"] > 1.5


def test_the_cli_trains_on_the_file_and_registers_the_model(
    datasets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from personify.cli.main import app

    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path))
    path = datasets_dir / "online_retail" / "online_retail.parquet"
    result = CliRunner().invoke(
        app, ["train", "churn", "--online-retail", str(path), "--cutoff", "2011-09-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)["model"]
    assert meta["version"] == 1 and meta["promoted"]
    assert meta["metrics"]["roc_auc"] > meta["metrics"]["recency_roc_auc"]
    assert meta["data_window"]["evaluated_as_of"].startswith("2011-09-01")
