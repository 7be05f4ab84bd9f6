"""Against a real ``personify serve``: the decision API caches people and verified keys in the
API process, while profiles are written by the worker process and keys revoked by the CLI.
Each change must show in the very next decision."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx2 as httpx
import pytest
from tests.e2e.conftest import WRITE_KEY, Server

pytestmark = [pytest.mark.slow]

DEFINITIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("content", "welcome", {"variants": {"web": {"headline": "Welcome"}}}),
    ("content", "pro_offer", {"variants": {"web": {"headline": "For pros"}}}),
    (
        "placement",
        "hero",
        {"channel": "web", "candidates": ["pro_offer", "welcome"], "default": "welcome"},
    ),
    (
        "rule_set",
        "hero",
        {"rules": [{"id": "pro", "when": {"traits.plan": "pro"}, "show": "pro_offer"}]},
    ),
]


def decide(server: Server, headers: dict[str, str]) -> httpx.Response:
    body = {"userId": "u1", "context": {"channel": "web"}, "placements": ["hero"]}
    return httpx.post(f"{server.url}/v1/decide", json=body, headers=headers)


def shown(server: Server, key: dict[str, str]) -> tuple[str, str]:
    res = decide(server, key)
    assert res.status_code == 200, res.text
    [decision] = res.json()["decisions"]
    return decision["content"]["key"], decision["reasons"][0]["type"]


def identify(server: Server, plan: str) -> None:
    sent = httpx.post(
        f"{server.url}/v1/identify",
        json={"userId": "u1", "traits": {"plan": plan}},
        auth=(WRITE_KEY, ""),
    )
    assert sent.status_code == 200, sent.text
    server.wait_caught_up()


def test_changes_made_by_other_processes_reach_the_next_decision(server: Server) -> None:
    for kind, name, body in DEFINITIONS:
        put = httpx.put(
            f"{server.url}/v1/definitions/{kind}/{name}", json=body, headers=server.admin()
        )
        assert put.status_code == 200, put.text
    made = httpx.post(
        f"{server.url}/v1/keys", json={"role": "decide", "name": "app"}, headers=server.admin()
    ).json()
    key = {"Authorization": f"Bearer {made['token']}"}
    refused = httpx.post(
        f"{server.url}/v1/decide", json={"placements": ["hero"]}, auth=(WRITE_KEY, "")
    )
    assert refused.status_code == 403  # write keys only collect
    assert "--role decide" in refused.json()["hint"]
    identify(server, "free")
    assert shown(server, key) == ("welcome", "fallback")
    assert shown(server, key) == ("welcome", "fallback")  # now from the API process's cache

    identify(server, "pro")  # processed by the worker process
    assert shown(server, key) == ("pro_offer", "rule")

    consent = httpx.post(
        f"{server.url}/v1/consent",
        json={"userId": "u1", "purposes": {"personalization": False}},
        headers=server.admin(),
    )
    assert consent.status_code == 200, consent.text
    assert shown(server, key) == ("welcome", "consent")

    assert decide(server, key).status_code == 200
    assert decide(server, key).status_code == 200
    subprocess.run(
        [sys.executable, "-m", "personify.cli", "keys", "revoke", made["key_id"]],
        env={**os.environ, "PERSONIFY_DATA_DIR": str(server.data_dir)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert decide(server, key).status_code == 401
