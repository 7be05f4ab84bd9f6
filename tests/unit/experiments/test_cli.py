"""``personify experiments``: good paths print tables or JSON, bad input says how to fix it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from personify.cli.main import app

runner = CliRunner()


def _files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    n = 4000
    variant = rng.choice(["A", "B"], n)
    exposures = pd.DataFrame(
        {"unit": [f"u{i}" for i in range(n)], "variant": variant, "exposed_at": 0.0}
    )
    bought = rng.random(n) < np.where(variant == "A", 0.1, 0.15)
    events = pd.DataFrame(
        {
            "unit": exposures["unit"][bought],
            "event": "Order Completed",
            "timestamp": 3600.0,
            "revenue": 20.0,
        }
    )
    exposures.to_csv(tmp_path / "exposures.csv", index=False)
    events.to_parquet(tmp_path / "events.parquet")
    return tmp_path / "exposures.csv", tmp_path / "events.parquet"


def test_analyze_prints_json_and_writes_a_chart(tmp_path: Path) -> None:
    exposures, events = _files(tmp_path)
    chart = tmp_path / "out.png"
    result = runner.invoke(
        app,
        [
            "experiments", "analyze", str(exposures), str(events),
            "-m", "conversion:Order Completed", "-m", "revenue",
            "--variants", "A,B", "--weights", "0.5,0.5", "--json", "--chart", str(chart),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["results"][0]["significant"] is True
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_analyze_table_and_bad_inputs(tmp_path: Path) -> None:
    exposures, events = _files(tmp_path)
    ok = runner.invoke(app, ["experiments", "analyze", str(exposures), str(events)])
    assert ok.exit_code == 0 and "SRM ok" in ok.output
    bad_metric = runner.invoke(
        app, ["experiments", "analyze", str(exposures), str(events), "-m", "nps"]
    )
    assert bad_metric.exit_code == 2 and "hint" in bad_metric.output
    missing = runner.invoke(app, ["experiments", "analyze", str(tmp_path / "no.csv"), str(events)])
    assert missing.exit_code == 2 and "no file" in missing.output
    (tmp_path / "x.txt").write_text("hi")
    wrong_type = runner.invoke(
        app, ["experiments", "analyze", str(tmp_path / "x.txt"), str(events)]
    )
    assert wrong_type.exit_code == 2 and "unknown file type" in wrong_type.output
    bad_method = runner.invoke(
        app, ["experiments", "analyze", str(exposures), str(events), "--method", "magic"]
    )
    assert bad_method.exit_code == 2


def test_power_srm_and_simulate() -> None:
    power = runner.invoke(
        app, ["experiments", "power", "--baseline", "0.05", "--lift", "0.1", "--json"]
    )
    assert power.exit_code == 0 and json.loads(power.output)["users_per_arm"] == 31231
    assert runner.invoke(app, ["experiments", "power", "--baseline", "0.05"]).exit_code == 2
    srm = runner.invoke(app, ["experiments", "srm", "1000", "1200"])
    assert srm.exit_code == 0 and "MISMATCH" in srm.output
    assert (
        runner.invoke(app, ["experiments", "srm", "1000", "1000", "--weights", "x"]).exit_code == 2
    )
    sim = runner.invoke(app, ["experiments", "simulate", "--horizon", "500", "--replications", "2"])
    assert sim.exit_code == 0 and "thompson" in sim.output


def test_ope_on_a_log_file_and_a_missing_dataset(tmp_path: Path) -> None:
    log = pd.DataFrame({"variant": ["a", "b"] * 50, "propensity": 0.5, "reward": [1, 0] * 50})
    log.to_csv(tmp_path / "log.csv", index=False)
    result = runner.invoke(
        app,
        [
            "experiments",
            "ope",
            "log",
            str(tmp_path / "log.csv"),
            "--target",
            "arm:a",
            "--action-column",
            "variant",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "IPW" in result.output and "1.000000" in result.output
    missing = runner.invoke(app, ["experiments", "ope", "open-bandit", str(tmp_path)])
    assert missing.exit_code == 2 and "random/all.csv" in missing.output


def test_report_and_ope_read_the_data_directory(tmp_path: Path, monkeypatch: Any) -> None:
    """An experiment served in embedded mode (SQLite, DuckDB), then read back by the CLI."""
    from personify.config import Settings
    from personify.decide.service import Decider
    from personify.experiments.serving import attach
    from personify.platform import build
    from personify.workspace import apply

    data = tmp_path / "data"
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(data))
    monkeypatch.setenv("PERSONIFY_WRITE_KEYS", "wk")
    workspace = tmp_path / "ws.yaml"
    workspace.write_text(
        "content:\n"
        "  a: {variants: {web: {headline: A}}}\n"
        "  b: {variants: {web: {headline: B}}}\n"
        "placements:\n"
        "  hero: {channel: web, candidates: [a, b], default: a}\n"
        "rules:\n"
        "  hero: [{id: t, use: hero_test}]\n"
        "experiments:\n"
        "  hero_test:\n"
        "    placement: hero\n"
        "    status: running\n"
        "    variants: [{key: control, content: a}, {key: treat, content: b}]\n"
    )
    with build(Settings()) as p:
        decider = Decider(p, poll_interval=0.0)
        p.processor.add_observer(decider.attributor)
        service = attach(decider, background_sync=False)
        apply(workspace, decider.store, actor="test")
        service.refresh(force=True)
        users = [f"u{i}" for i in range(60)]
        for user in users:
            p.identify(user_id=user, traits={})
        p.drain()
        for i, user in enumerate(users):
            [decision] = decider.decide(placements=["hero"], user_id=user)
            if i % 3 == 0:
                p.track(
                    user_id=user,
                    event="Order Completed",
                    properties={"decision_id": decision.decision_id, "revenue": 10},
                )
        p.drain()
        service.close()
        decider.close()

    report = runner.invoke(app, ["experiments", "report", "hero_test", "--json"])
    assert report.exit_code == 0, report.output
    body = json.loads(report.output)
    assert sum(body["units"].values()) == 60
    ope = runner.invoke(
        app,
        [
            "experiments",
            "ope",
            "decisions",
            "hero_test",
            "--target",
            "arm:a",
            "--reward",
            "converted",
        ],
    )
    assert ope.exit_code == 0, ope.output
    assert "IPW" in ope.output
    missing = runner.invoke(app, ["experiments", "ope", "decisions", "nope", "--target", "uniform"])
    assert missing.exit_code == 2 and "no logged decisions" in missing.output
    unknown = runner.invoke(app, ["experiments", "report", "nope"])
    assert unknown.exit_code == 2 and "no experiment named" in unknown.output

    shipped = runner.invoke(app, ["experiments", "ship", "hero_test", "--variant", "treat"])
    assert shipped.exit_code == 0 and "everyone gets 'treat'" in shipped.output
    assert "is stopped" in runner.invoke(app, ["experiments", "stop", "hero_test"]).output
    assert "is running" in runner.invoke(app, ["experiments", "start", "hero_test"]).output
    bad = runner.invoke(app, ["experiments", "ship", "hero_test", "--variant", "zzz"])
    assert bad.exit_code == 2 and "shipped" in bad.output
