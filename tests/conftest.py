"""Shared fixtures.

Real public datasets are read from ``PERSONIFY_DATASETS_DIR`` (CI points it at
``../shared/datasets``); tests that need them skip with that reason when it is unset, and
``.ci/run`` turns such skips into a failure so CI always runs them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from personify.config import Settings


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    settings = Settings()
    configured = settings.datasets_dir
    if configured is None or not configured.is_dir():
        if settings.require_datasets:
            pytest.fail(f"PERSONIFY_REQUIRE_DATASETS is set but datasets are missing: {configured}")
        pytest.skip(
            "real datasets not available: set PERSONIFY_DATASETS_DIR to the shared datasets folder"
        )
    return configured
