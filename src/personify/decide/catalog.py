"""The compiled, in-memory view of every content item, placement and rule set.

The decision path never reads definitions from disk: it reads a :class:`Catalog`, rebuilt only
when the definition store's revision moves. :class:`LiveCatalog` checks that revision (one
indexed ``MAX``) at most every ``poll_interval`` seconds, so a change made through the API or
``personify apply`` in any process reaches every decision path within about that interval,
without a restart. Unchanged versions are reused, not recompiled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from personify.decide.content import (
    ContentItem,
    check_content,
    compile_content,
    content_cap_key,
)
from personify.decide.placements import Placement, check_placement, compile_placement
from personify.decide.rules import RuleSet, check_rules, compile_rules, rules_of
from personify.definitions import Definition, DefinitionStore
from personify.errors import PersonifyError

CONTENT: Final = "content"
PLACEMENT: Final = "placement"
RULE_SET: Final = "rule_set"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Catalog:
    revision: int = 0
    content: Mapping[str, ContentItem] = field(default_factory=dict)
    placements: Mapping[str, Placement] = field(default_factory=dict)
    rule_sets: Mapping[str, RuleSet] = field(default_factory=dict)
    #: stored definitions that no longer compile (e.g. a rule pointing at deleted content);
    #: they are skipped, and listed here and in the logs
    skipped: tuple[str, ...] = ()
    #: per placement, its candidates resolved once: ``(key, item or None, cap key)``
    slots: Mapping[str, tuple[Slot, ...]] = field(default_factory=dict)


Slot = tuple[str, ContentItem | None, str]


def _slots(
    placements: Mapping[str, Placement], content: Mapping[str, ContentItem]
) -> dict[str, tuple[Slot, ...]]:
    return {
        name: tuple((key, content.get(key), content_cap_key(key)) for key in p.candidates)
        for name, p in placements.items()
    }


def _compile(
    defs: list[Definition],
    previous: Mapping[str, Any],
    check: Callable[[Definition], list[Any]],
    build: Callable[[Definition], Any],
    skipped: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in defs:
        old = previous.get(d.key)
        if old is not None and getattr(old, "version", None) == d.version:
            out[d.key] = old
            continue
        problems = check(d)
        if problems:
            skipped.append(
                f"{d.kind} {d.key} v{d.version}: {problems[0].field}: {problems[0].message}"
            )
            continue
        try:
            out[d.key] = build(d)
        except PersonifyError as exc:
            skipped.append(f"{d.kind} {d.key} v{d.version}: {exc.message}")
    return out


def build_catalog(store: DefinitionStore, previous: Catalog | None = None) -> Catalog:
    """Compile everything live in ``store`` (reusing what ``previous`` already compiled)."""
    previous = previous or Catalog()
    revision = store.revision()  # read first: a change racing this build triggers a rebuild
    skipped: list[str] = []
    bodies = {d.key: d.body for d in store.list(CONTENT)}
    content = _compile(
        store.list(CONTENT),
        previous.content,
        lambda d: check_content(d.key, d.body),
        lambda d: compile_content(d.key, d.version, d.body),
        skipped,
    )
    placements = _compile(
        store.list(PLACEMENT),
        previous.placements,
        lambda d: check_placement(d.body, lambda k: bodies.get(k) if k in content else None),
        lambda d: compile_placement(d.key, d.version, d.body),
        skipped,
    )

    def attributes(key: str) -> Mapping[str, Any] | None:
        item = content.get(key)
        return item.attributes if item is not None else None

    rule_sets: dict[str, RuleSet] = {}
    for d in store.list(RULE_SET):
        placement = placements.get(d.key)
        body = {"candidates": list(placement.candidates)} if placement else None
        rules = rules_of(d.body)
        problems = check_rules(rules, body, lambda k: bodies.get(k))
        if problems or placement is None or not isinstance(rules, list):
            first = problems[0].message if problems else "placement missing"
            skipped.append(f"rule_set {d.key} v{d.version}: {first}")
            continue
        try:
            rule_sets[d.key] = compile_rules(
                d.key, d.version, rules, placement.candidates, attributes
            )
        except PersonifyError as exc:
            skipped.append(f"rule_set {d.key} v{d.version}: {exc.message}")
    for line in skipped:
        log.warning("skipping definition that does not compile: %s", line)
    return Catalog(
        revision, content, placements, rule_sets, tuple(skipped), _slots(placements, content)
    )


class LiveCatalog:
    """The current catalog, refreshed from the store when its revision moves."""

    def __init__(
        self,
        store: DefinitionStore,
        poll_interval: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._interval = poll_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._catalog = build_catalog(store)
        self._checked = monotonic()

    def current(self) -> Catalog:
        """The catalog, checking the store's revision if ``poll_interval`` has passed."""
        if self._monotonic() - self._checked >= self._interval:
            self.refresh()
        return self._catalog

    def refresh(self, force: bool = False) -> Catalog:
        """Rebuild if the store moved. If the store cannot be read right now (locked, gone),
        keep serving the catalog we have and try again at the next poll."""
        with self._lock:
            self._checked = self._monotonic()
            try:
                if force or self._store.revision() != self._catalog.revision:
                    self._catalog = build_catalog(self._store, self._catalog)
            except Exception:
                log.exception(
                    "cannot reload definitions; still serving revision %s", self._catalog.revision
                )
            return self._catalog
