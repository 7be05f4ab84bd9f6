"""Version strings padded for comparison as GrowthBook pads them."""

from __future__ import annotations

from typing import Any

import pytest

from personify.segments.versions import padded


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.2.3", "    1-    2-    3-~"),
        ("v1.2.3+build.9", "    1-    2-    3-~"),
        ("1.0.0-rc.1", "    1-    0-    0-rc-    1"),
        ("1-2-3", "    1-    2-    3-~"),
        ("1.2", "    1-    2"),
        ("123456.0.0", "123456-    0-    0-~"),
        (3, "    3"),
        (None, "    0"),
        ("", "    0"),
        (["1.2.3"], "    0"),
    ],
)
def test_padded(version: Any, expected: str) -> None:
    assert padded(version) == expected


def test_a_release_sorts_after_its_pre_releases() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0", "1.0.1"]
    assert sorted(ordered, key=padded) == ordered
