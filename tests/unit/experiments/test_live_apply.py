"""An experiment applied while decisions are being served goes live without a restart."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from tests.unit.helpers import memory_engine

import personify.decide
from personify.decide.service import Decider
from personify.experiments.serving import attach
from personify.workspace import apply

DEMO_WORKSPACE = Path(personify.decide.__file__).parent / "demo_workspace.yaml"
NEW_EXPERIMENT = """
rules:
  home_hero:
    - {id: test, use: hero_new}
experiments:
  hero_new:
    placement: home_hero
    status: running
    type: ab
    variants:
      - {key: control, content: welcome_banner, weight: 0.5}
      - {key: loyalty, content: loyalty_picks, weight: 0.5}
"""


def test_a_new_experiment_serves_once_applied_while_running(tmp_path: Path) -> None:
    p, _ = memory_engine()
    decider = Decider(p, poll_interval=0.0)
    service = attach(decider, seed=3, sync_interval=0.0, background_sync=False)
    apply(DEMO_WORKSPACE, decider.store, actor="test")
    assert decider.decide(anonymous_id="a-0", placements=["home_hero"])[0].policy != "hero_new"
    path = tmp_path / "experiment.yaml"
    path.write_text(textwrap.dedent(NEW_EXPERIMENT))
    apply(path, decider.store, actor="test")  # as `personify apply` does beside a server
    time.sleep(0.6)  # the service looks at the definitions at most every 0.5 s
    decisions = [
        decider.decide(anonymous_id=f"a-{i}", placements=["home_hero"])[0] for i in range(20)
    ]
    assert {d.policy for d in decisions} == {"hero_new"}
    assert {d.content for d in decisions} == {"welcome_banner", "loyalty_picks"}
    assert "hero_new" in service.served_keys()
