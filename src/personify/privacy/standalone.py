"""Consent checks for batch jobs that run outside the engine (``personify models score``).

They open the consent history and the profile store of the data directory read-only for
the call, so they work while the server runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from personify.config import Settings
from personify.privacy.consent import ConsentPolicy, ConsentStore, check_purpose


def consent_check(settings: Settings, purpose: str) -> Callable[[Iterable[str]], set[str]]:
    """``ids -> the ids purpose may use`` on the embedded stores (the ``consent=`` argument
    of model scoring). Ids the profile store does not hold get the default region's default.
    With the memory state backend nothing outlives its process: every id is refused."""
    check_purpose(purpose)

    def check(ids: Iterable[str]) -> set[str]:
        from personify.storage.sqlite import SqlProfileStore
        from personify.storage.sqlite.profiles import sqlite_engine

        wanted = list(ids)
        if settings.state_backend != "sqlite":
            return set()
        data = settings.data_dir
        profiles = SqlProfileStore(sqlite_engine(f"sqlite:///{data / 'state.sqlite'}"))
        store = ConsentStore(data / "consent.sqlite")
        try:
            conf = settings.privacy
            policy = ConsentPolicy(store, conf.consent_defaults, conf.regions, profiles)
            return policy.allowed(purpose, wanted)
        finally:
            store.close()
            profiles.close()

    return check
