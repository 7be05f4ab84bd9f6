"""``personify recs train|evaluate|show`` on a small store, and their error messages."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pandas as pd
import pytest
from tests.unit.recs import storefront
from typer.testing import CliRunner

from personify.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PERSONIFY_DATASETS_DIR", raising=False)
    return tmp_path / "data"


def store_ndjson(path: Path) -> Path:
    lines = []
    for row in storefront.rows():
        message = orjson.loads(row["payload"])
        message.update(messageId=row["message_id"], timestamp=row["timestamp"])
        lines.append(orjson.dumps(message).decode())
    path.write_text("\n".join(lines) + "\n")
    return path


def customer_number(user: str) -> int:
    taste, n = user.split("-")
    return 1000 + int(n) + (100 if taste == "garden" else 0)


def retail_csv(path: Path) -> Path:
    """The storefront's orders as Online Retail lines, moved to 2011 around the cutoff."""
    lines = []
    for row in storefront.rows():
        if row["event"] != "Order Completed":
            continue
        message = orjson.loads(row["payload"])
        when = pd.Timestamp(row["timestamp"]).tz_localize(None) + pd.DateOffset(years=-13, months=5)
        for p in message["properties"]["products"]:
            lines.append(
                {
                    "InvoiceNo": message["properties"]["order_id"],
                    "StockCode": p["product_id"],
                    "Description": p["name"],
                    "Quantity": 1,
                    "InvoiceDate": when.strftime("%Y-%m-%d %H:%M"),
                    "UnitPrice": p["price"],
                    "CustomerID": customer_number(row["profile_id"]),
                    "Country": "United Kingdom",
                }
            )
    pd.DataFrame(lines).to_csv(path, index=False)
    return path


def test_train_from_the_event_store_then_show(tmp_path: Path) -> None:
    imported = runner.invoke(app, ["import", "ndjson", str(store_ndjson(tmp_path / "s.ndjson"))])
    assert imported.exit_code == 0, imported.output
    trained = runner.invoke(app, ["recs", "train", "--validation-days", "30", "--json"])
    assert trained.exit_code == 0, trained.output
    version = json.loads(trained.output[trained.output.index("{") :])
    assert version["name"] == "recs" and version["version"] == 1
    assert version["data_window"]["source"] == "event-store"
    assert version["params"]["items"] == 20

    shown = runner.invoke(app, ["recs", "show", "--user-id", "garden-5", "--json", "--k", "3"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["strategy"] == "personal" and body["items"][0]["id"] == "g5"

    table = runner.invoke(app, ["recs", "show", "--similar", "m2", "--k", "3"])
    assert table.exit_code == 0 and "similar to m2" in table.output

    visitor = runner.invoke(app, ["recs", "show", "--json"])
    assert json.loads(visitor.output)["strategy"] == "popular"


def test_train_without_events_explains_what_to_do() -> None:
    result = runner.invoke(app, ["recs", "train"])
    assert result.exit_code == 2
    assert "no event store" in result.output and "--online-retail" in result.output


def test_show_before_training_says_how_to_train() -> None:
    result = runner.invoke(app, ["recs", "show"])
    assert result.exit_code == 2 and "personify recs train" in result.output


def test_show_refuses_two_identities() -> None:
    result = runner.invoke(app, ["recs", "show", "--user-id", "a", "--email", "a@b.co"])
    assert result.exit_code == 2 and "not several" in result.output


def test_evaluate_needs_a_file() -> None:
    result = runner.invoke(app, ["recs", "evaluate"])
    assert result.exit_code == 2 and "PERSONIFY_DATASETS_DIR" in result.output


def test_evaluate_prints_every_model_and_the_protocol(tmp_path: Path) -> None:
    path = retail_csv(tmp_path / "retail.csv")
    out = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "recs",
            "evaluate",
            "--online-retail",
            str(path),
            "--cutoff",
            "2011-08-01",
            "--variant",
            "repeat",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "protocol" in result.output and "NDCG@10" in result.output
    assert "hybrid weights" in result.output
    report = json.loads(out.read_text())
    models = {r["model"] for r in report["results"]}
    assert models >= {"hybrid", "buy_again_popular", "ease", "als", "bpr", "content", "popular"}
    assert report["facts"]["test_users_repeat"] > 0


def test_evaluate_refuses_unknown_models_and_variants(tmp_path: Path) -> None:
    path = retail_csv(tmp_path / "retail.csv")
    bad = runner.invoke(app, ["recs", "evaluate", "--online-retail", str(path), "--model", "svd"])
    assert bad.exit_code == 2 and "unknown model" in bad.output
    bad = runner.invoke(
        app, ["recs", "evaluate", "--online-retail", str(path), "--variant", "sampled"]
    )
    assert bad.exit_code == 2 and "unknown variant" in bad.output


def test_train_on_a_retail_file_then_show_a_customer_without_a_profile(tmp_path: Path) -> None:
    path = retail_csv(tmp_path / "retail.csv")
    trained = runner.invoke(app, ["recs", "train", "--online-retail", str(path)])
    assert trained.exit_code == 0, trained.output
    assert "online-retail:retail.csv" in trained.output
    # customer 1103 is gardener 3 (favourite g3), never imported as a profile
    shown = runner.invoke(app, ["recs", "show", "--user-id", "1103", "--json", "--k", "2"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["strategy"] == "personal" and body["items"][0]["id"] == "g3"
    missing = runner.invoke(app, ["recs", "show", "--user-id", "424242"])
    assert missing.exit_code == 2 and "no training history" in missing.output
