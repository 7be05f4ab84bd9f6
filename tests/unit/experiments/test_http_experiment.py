"""End to end over HTTP: visitors get variants from /v1/decide, conversions come back as
events carrying the decision id, and the report finds the planted winner (and SRM fires when
the split is skewed). A bandit moves traffic to the better arm, and its logged propensities
let the OPE command estimate another policy."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import T0, decide_key, memory_engine
from typer.testing import CliRunner

import personify.decide
from personify.api.app import create_app
from personify.cli.main import app as cli
from personify.decide.service import Decider
from personify.errors import Unavailable
from personify.experiments.serving import ExperimentService, attach
from personify.workspace import apply

WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
ADMIN = {"Authorization": "Bearer admin"}
DEMO_WORKSPACE = Path(personify.decide.__file__).parent / "demo_workspace.yaml"
# the experiment runs on the demo storefront's home_hero placement, in front of its rules
OVERLAY = """
rules:
  home_hero:
    - {id: test, use: hero_test}
experiments:
  hero_test:
    placement: home_hero
    status: running
    type: {type}
    min_weight: 0.02
    variants:
      - {key: control, content: welcome_banner, weight: {w0}}
      - {key: loyalty, content: loyalty_picks, weight: {w1}}
"""
RATES = {
    "welcome_banner": 0.10,
    "loyalty_picks": 0.20,
}  # planted: loyalty converts +100% (relative)


class Site:
    def __init__(self, tmp_path: Path, experiment_type: str, weights: tuple[float, float]) -> None:
        # simulated traffic is far above the per-key rate limit meant for real clients
        self.p, self.clock = memory_engine(privacy={"rate_per_second": 1e6, "rate_burst": 10**6})
        self.decider = Decider(self.p, poll_interval=0.0)
        self.p.processor.add_observer(self.decider.attributor)
        self.service: ExperimentService = attach(
            self.decider, seed=3, sync_interval=0.0, background_sync=False
        )
        apply(DEMO_WORKSPACE, self.decider.store, actor="test")
        path = tmp_path / "experiment.yaml"
        text = OVERLAY.replace("{type}", experiment_type)
        text = text.replace("{w0}", str(weights[0])).replace("{w1}", str(weights[1]))
        path.write_text(textwrap.dedent(text))
        apply(path, self.decider.store, actor="test")
        self.service.refresh(force=True)
        app = create_app(self.p, own_engine=False)
        app.state.decider = self.decider
        app.state.experiments = self.service
        self.client = TestClient(app)
        self.key = decide_key(self.p)  # the site's server asks for decisions with it

    def send(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 2000):
            resp = self.client.post(
                "/v1/batch", json={"batch": messages[start : start + 2000]}, headers=WRITE
            )
            assert resp.status_code == 200, resp.text
        self.p.drain()

    def decide(self, user: str) -> dict[str, Any]:
        resp = self.client.post(
            "/v1/decide", json={"userId": user, "placements": ["home_hero"]}, headers=self.key
        )
        assert resp.status_code == 200, resp.text
        decision: dict[str, Any] = resp.json()["decisions"][0]
        return decision

    def close(self) -> None:
        self.client.close()
        self.service.close()
        self.decider.close()
        self.p.close()


@pytest.fixture
def site_factory(tmp_path: Path) -> Iterator[Any]:
    sites: list[Site] = []

    def make(experiment_type: str = "ab", weights: tuple[float, float] = (0.5, 0.5)) -> Site:
        site = Site(tmp_path, experiment_type, weights)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


def _run_visitors(site: Site, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n)]
    site.send([{"type": "identify", "userId": u, "traits": {"plan": "free"}} for u in users])
    later = (T0 + timedelta(hours=2)).isoformat()
    conversions = []
    for user in users:
        decision = site.decide(user)
        content = decision["content"]["key"]
        if rng.random() < RATES[content]:
            conversions.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Completed",
                    "timestamp": later,
                    "properties": {"decision_id": decision["decision_id"], "revenue": 40.0},
                }
            )
    site.send(conversions)


def test_the_report_finds_the_planted_winner(site_factory: Any, monkeypatch: Any) -> None:
    site = site_factory()
    _run_visitors(site, 1000, seed=1)

    resp = site.client.get("/v1/experiments/hero_test/report", headers=ADMIN)

    assert resp.status_code == 200, resp.text
    body = resp.json()
    [result] = body["results"]
    low, high = result["relative"]["ci"]
    assert result["variant"] == "loyalty" and result["significant"]
    assert result["relative"]["estimate"] > 0 and low < 1.0 < high  # planted lift: +100%
    assert body["srm"]["mismatch"] is False
    assert body["verdict"].startswith("Loyalty beats control on conversion:Order Completed by")
    png = site.client.get("/v1/experiments/hero_test/report?format=png", headers=ADMIN)
    assert png.headers["content-type"] == "image/png"
    listed = site.client.get("/v1/experiments", headers=ADMIN).json()
    assert listed["experiments"][0]["key"] == "hero_test"

    # under `serve` the API process cannot scan events: the report reads attributed rewards
    def no_scan(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("scanning runs in the worker")

    monkeypatch.setattr(site.p.stores.events, "scan", no_scan)
    fallback = site.client.get("/v1/experiments/hero_test/report", headers=ADMIN).json()
    assert fallback["source"].startswith("decision log")
    [again] = fallback["results"]
    assert again["significant"] and again["means"] == result["means"]


def test_srm_fires_when_the_split_is_deliberately_skewed(site_factory: Any) -> None:
    site = site_factory(weights=(0.4, 0.6))
    _run_visitors(site, 1000, seed=2)
    # the team believes the test runs 50/50: analyse against that split
    exposures = site.service.exposures.frame("hero_test")
    from personify.experiments.stats import srm_check

    counts = exposures["variant"].value_counts()
    assert srm_check([counts["control"], counts["loyalty"]], [0.5, 0.5]).mismatch
    body = site.client.get("/v1/experiments/hero_test/report", headers=ADMIN).json()
    assert body["srm"]["mismatch"] is False  # against its configured 40/60 split it is fine


def test_report_errors_are_precise(site_factory: Any) -> None:
    site = site_factory()
    assert site.client.get("/v1/experiments/nope/report", headers=ADMIN).status_code == 404
    bad = site.client.get("/v1/experiments/hero_test/report?metric=bogus", headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["hint"]
    assert site.client.get("/v1/experiments").status_code in (401, 503)


def test_a_bandit_moves_traffic_and_its_log_supports_ope(site_factory: Any, tmp_path: Path) -> None:
    site = site_factory(experiment_type="bandit")
    rng = np.random.default_rng(4)
    users = [f"b{i}" for i in range(400)]
    site.send([{"type": "identify", "userId": u} for u in users])
    shown = []
    for start in range(0, len(users), 50):
        clicks = []
        for user in users[start : start + 50]:
            decision = site.decide(user)
            content = decision["content"]["key"]
            shown.append(content)
            assert 0 < decision["propensity"] <= 1
            if rng.random() < {"welcome_banner": 0.10, "loyalty_picks": 0.30}[content]:
                clicks.append(
                    {
                        "type": "track",
                        "userId": user,
                        "event": "Content Clicked",
                        "properties": {"decision_id": decision["decision_id"]},
                    }
                )
        site.send(clicks)
    assert shown[:100].count("loyalty_picks") < shown[-100:].count("loyalty_picks")
    assert shown[-100:].count("loyalty_picks") > 75

    outcomes = site.decider.log.outcomes("hero_test")
    log = pd.DataFrame(
        {
            "action": [o["content"] for o in outcomes],
            "propensity": [o["propensity"] for o in outcomes],
            "reward": [float(o["clicked"]) for o in outcomes],
        }
    )
    path = tmp_path / "decisions.csv"
    log.to_csv(path, index=False)
    result = CliRunner().invoke(
        cli, ["experiments", "ope", "log", str(path), "--target", "arm:loyalty_picks", "--json"]
    )
    assert result.exit_code == 0, result.output
    import json

    estimates = {e["estimator"]: e for e in json.loads(result.output)["estimates"]}
    for name in ("ipw", "snipw", "dr"):
        low, high = estimates[name]["ci"]
        assert low < 0.30 < high  # shipping loyalty to everyone truly earns 0.30


def test_experiments_are_edited_through_the_definitions_api(site_factory: Any) -> None:
    site = site_factory()
    bad = site.client.put(
        "/v1/definitions/experiment/hero_two",
        json={"placement": "nowhere", "variants": [{"key": "a", "content": "missing"}]},
        headers=ADMIN,
    )
    assert bad.status_code == 400
    assert "variants" in {p["field"] for p in bad.json()["problems"]}
    body = {
        "placement": "home_hero",
        "status": "running",
        "variants": [{"key": "a", "content": "welcome_banner"}, {"key": "b", "content": "missing"}],
    }
    unresolved = site.client.put("/v1/definitions/experiment/hero_two", json=body, headers=ADMIN)
    assert unresolved.status_code == 400 and "no content named" in unresolved.text
    body["variants"][1]["content"] = "loyalty_picks"
    ok = site.client.put("/v1/definitions/experiment/hero_two", json=body, headers=ADMIN)
    assert ok.status_code == 200, ok.text
    site.service.refresh(force=True)
    listed = site.client.get("/v1/experiments", headers=ADMIN).json()["experiments"]
    assert [e["key"] for e in listed] == ["hero_test", "hero_two"]


def test_an_anonymous_visitor_keeps_the_variant_after_logging_in(site_factory: Any) -> None:
    site = site_factory()

    def shown(body: dict[str, Any]) -> str:
        resp = site.client.post(
            "/v1/decide", json={**body, "placements": ["home_hero"]}, headers=site.key
        )
        assert resp.status_code == 200, resp.text
        content: str = resp.json()["decisions"][0]["content"]["key"]
        return content

    before = {f"a{i}": shown({"anonymousId": f"a{i}"}) for i in range(40)}
    site.send([{"type": "identify", "anonymousId": a, "userId": f"user-{a}"} for a in before])
    after = {a: shown({"userId": f"user-{a}"}) for a in before}

    assert after == before
    # without stickiness the profile id would be hashed afresh: about half would flip
    spec = site.service.experiment("hero_test").spec
    from personify.experiments.assignment import AssignmentContext, run

    fresh = [
        run(spec, AssignmentContext({"id": site.p.lookup("user_id", f"user-{a}")})).variation_id
        != run(spec, AssignmentContext({"id": f"anon:{a}"})).variation_id
        for a in before
    ]
    assert sum(fresh) >= 10


def test_start_stop_and_ship_over_http(site_factory: Any) -> None:
    site = site_factory()
    stop = site.client.post("/v1/experiments/hero_test/stop", headers=ADMIN)
    assert stop.status_code == 200 and stop.json()["status"] == "stopped"
    assert site.decide("nobody")["policy"] != "hero_test"
    bad = site.client.post(
        "/v1/experiments/hero_test/ship", json={"variant": "nope"}, headers=ADMIN
    )
    assert bad.status_code == 400 and "shipped" in {p["field"] for p in bad.json()["problems"]}
    ship = site.client.post(
        "/v1/experiments/hero_test/ship", json={"variant": "loyalty"}, headers=ADMIN
    )
    assert ship.status_code == 200 and ship.json()["shipped"] == "loyalty"
    site.send([{"type": "identify", "userId": f"s{i}"} for i in range(10)])
    shown = {site.decide(f"s{i}")["content"]["key"] for i in range(10)}
    assert shown == {"loyalty_picks"}
    assert site.client.post("/v1/experiments/hero_test/pause", headers=ADMIN).status_code == 400
    assert site.client.post("/v1/experiments/nope/start", headers=ADMIN).status_code == 404
