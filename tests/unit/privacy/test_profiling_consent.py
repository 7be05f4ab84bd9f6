"""Model scoring's consent check: only profiles whose ``profiling`` consent allows it."""

from __future__ import annotations

from pathlib import Path

from personify.config import Settings
from personify.platform import build
from personify.privacy.standalone import consent_check


def test_consent_check_on_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", write_keys="wk")
    with build(settings) as p:
        p.identify(user_id="us", traits={"country": "US"})
        p.identify(user_id="fr", traits={"country": "FR"})
        p.identify(user_id="fr-yes", traits={"country": "FR", "consent": {"profiling": True}})
        p.identify(user_id="us-no", traits={"country": "US"})
        p.track(user_id="us-no", event="Consent Updated", properties={"profiling": False})
        p.drain()
        ids = {u: p.lookup("user_id", u) for u in ("us", "fr", "fr-yes", "us-no")}
    check = consent_check(settings, "profiling")
    assert check([*ids.values(), "p_unknown"]) == {ids["us"], ids["fr-yes"], "p_unknown"}
    eu_only = Settings(
        data_dir=tmp_path / "d", privacy={"consent_defaults": {"default": {"profiling": False}}}
    )
    assert consent_check(eu_only, "profiling")([ids["us"], "p_unknown", ids["fr-yes"]]) == {
        ids["fr-yes"]
    }
