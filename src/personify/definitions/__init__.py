"""Versioned definitions: segments, content, placements, rules, experiments.

Every change is a new version that can be listed, diffed and rolled back; deletes are
tombstone versions. Other processes notice changes by polling :meth:`DefinitionStore.revision`.

>>> from personify.definitions import MemoryDefinitionStore
>>> store = MemoryDefinitionStore()
>>> store.put("placement", "home_hero", {"channel": "web"}, actor="ada").version
1
>>> store.put("placement", "home_hero", {"channel": "email"}, actor="ada").version
2
>>> store.diff("placement", "home_hero", 1, 2)
['~ channel: "web" -> "email"']
>>> store.rollback("placement", "home_hero", 1, actor="ada").body
{'channel': 'web'}
"""

from personify.clock import Clock
from personify.config import Settings
from personify.definitions.memory import MemoryDefinitionStore
from personify.definitions.records import Definition, DefinitionStore
from personify.definitions.sqlite import SqlDefinitionStore, open_sqlite


def open_store(settings: Settings, clock: Clock | None = None) -> DefinitionStore:
    """The store the settings name: ``data_dir/definitions.sqlite``, or memory for tests."""
    if settings.state_backend == "memory":
        return MemoryDefinitionStore(clock)
    return open_sqlite(settings.data_dir, clock)


__all__ = [
    "Definition",
    "DefinitionStore",
    "MemoryDefinitionStore",
    "SqlDefinitionStore",
    "open_sqlite",
    "open_store",
]
