"""Serving experiments on the decision engine: definitions in, registered policies out.

:class:`ExperimentService` reads the ``experiment`` definitions from the definition store and
registers one policy per experiment key on the decision engine, so a rule ``use: <key>``
hands the placement to the experiment (or bandit). It polls the store's revision (at most
every ``poll_interval`` seconds, from the request path) and recompiles what changed, so
start, stop and ship take effect without a restart. A bandit keeps its learned state across
edits that do not change its arms.

Bandits learn from the decision log (:mod:`.learning`) when the service is given the log's
``outcomes``; reports read from :mod:`.sources`.

:func:`attach` wires a service onto a :class:`personify.decide.service.Decider` with the
embedded stores (``exposures.sqlite`` and ``sticky.sqlite`` under the data directory, or
memory when the state backend is ``memory``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from personify.config import Settings
from personify.decide.policies.base import Choice, Policy, PolicyRequest, Reason
from personify.decide.policies.fallback import Fallback
from personify.definitions import DefinitionStore
from personify.errors import InvalidInput, NotFound, Problem
from personify.experiments.definitions import ExperimentDef, compile_experiment
from personify.experiments.exposures import ExposureLog, MemoryExposureLog, SqliteExposureLog
from personify.experiments.learning import OUTCOME_LIMIT, LoggedBandit, Outcomes
from personify.experiments.policy import (
    BanditPlacementPolicy,
    Clock,
    ExperimentPolicy,
    HoldoutPolicy,
    Identities,
)
from personify.experiments.sticky import MemoryStickyStore, SqliteStickyStore, StickyStore

KIND = "experiment"


def open_experiment_stores(settings: Settings) -> tuple[ExposureLog, StickyStore]:
    """The exposure log and sticky store for these settings (SQLite files or memory)."""
    if settings.state_backend == "memory":
        return MemoryExposureLog(), MemoryStickyStore()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return (
        SqliteExposureLog(settings.data_dir / "exposures.sqlite"),
        SqliteStickyStore(settings.data_dir / "sticky.sqlite"),
    )


class _Passing:
    """A holdout that is not running: it never decides."""

    def __init__(self, name: str, status: str) -> None:
        self.name = name
        self._status = status

    def choose(self, request: PolicyRequest) -> Choice | None:
        request.notes.append(Reason("policy", f"holdout {self.name!r} is {self._status}"))
        return None


class _Live:
    """The policy registered under an experiment key: always serves the current definition."""

    def __init__(self, service: ExperimentService, key: str) -> None:
        self.name = key
        self._service = service

    def choose(self, request: PolicyRequest) -> Choice | None:
        self._service.refresh()
        policy = self._service.policy(self.name)
        if policy is None:
            request.notes.append(Reason("policy", f"experiment {self.name!r} is not defined"))
            return None
        return policy.choose(request)


class ExperimentService:
    """Compiles experiment definitions into policies and keeps them registered."""

    def __init__(
        self,
        store: DefinitionStore,
        register: Callable[[str, Policy], None],
        *,
        outcomes: Outcomes | None = None,
        exposures: ExposureLog | None = None,
        sticky: StickyStore | None = None,
        delegates: Mapping[str, Policy] | None = None,
        clock: Clock = time.time,
        poll_interval: float = 0.5,
        sync_interval: float = 2.0,
        background_sync: bool = False,
        decision: Callable[[str], Any] | None = None,
        identities: Identities | None = None,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self._identities = identities
        self._background = background_sync
        self._decision = decision
        self.exposures = exposures or MemoryExposureLog()
        self.sticky = sticky or MemoryStickyStore()
        self._register = register
        self._outcomes = outcomes
        self._delegates: dict[str, Policy] = {"fallback": Fallback(), **(delegates or {})}
        self._clock = clock
        self._poll = poll_interval
        self._sync = sync_interval
        self._seed = seed
        self._lock = threading.Lock()
        self._revision = -1
        self._checked = float("-inf")
        self._defs: dict[str, tuple[int, ExperimentDef]] = {}
        self._policies: dict[str, Policy] = {}
        self.errors: dict[str, str] = {}
        self.refresh(force=True)

    def add_delegate(self, name: str, policy: Policy) -> None:
        """Make ``policy`` available to variants written ``{policy: <name>}``."""
        self._delegates[name] = policy
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Recompile definitions that changed since the last look (rate-limited)."""
        now = time.monotonic()
        if not force and now - self._checked < self._poll:
            return
        with self._lock:
            self._checked = now
            revision = self.store.revision()
            if revision == self._revision and not force:
                return
            self._revision = revision
            seen = set()
            for definition in self.store.list(KIND):
                seen.add(definition.key)
                self._load(definition.key, definition.version, definition.body)
            for gone in set(self._defs) - seen:
                self._defs.pop(gone)
                self._policies.pop(gone, None)

    def _load(self, key: str, version: int, body: dict[str, Any]) -> None:
        known = self._defs.get(key)
        if known is not None and known[0] == version and key in self._policies:
            return
        try:
            experiment = compile_experiment(key, body)
            policy = self._build(experiment, known[1] if known else None)
        except InvalidInput as exc:  # keep serving the others; report the broken one
            self.errors[key] = exc.message
            return
        self.errors.pop(key, None)
        self._defs[key] = (version, experiment)
        self._policies[key] = policy
        self._register(key, _Live(self, key))

    def _build(self, experiment: ExperimentDef, previous: ExperimentDef | None) -> Policy:
        if experiment.type == "holdout":
            if experiment.status != "running":
                return _Passing(experiment.key, experiment.status)
            return HoldoutPolicy(
                experiment.variants[0].weight,
                seed=experiment.key,
                exposures=self.exposures,
                clock=self._clock,
            )
        if experiment.type != "bandit":
            return ExperimentPolicy(
                experiment,
                delegates=self._delegates,
                exposures=self.exposures,
                sticky=self.sticky,
                identities=self._identities,
                clock=self._clock,
            )
        if self._outcomes is not None:
            return LoggedBandit(
                experiment,
                self._outcomes,
                exposures=self.exposures,
                clock=self._clock,
                seed=self._seed,
                sync_interval=self._sync,
                background=self._background,
                decision=self._decision,
            )
        old = self._policies.get(experiment.key)
        same_arms = previous is not None and previous.variants == experiment.variants
        bandit = old.bandit if same_arms and isinstance(old, BanditPlacementPolicy) else None
        return BanditPlacementPolicy(
            experiment, bandit, exposures=self.exposures, clock=self._clock, seed=self._seed
        )

    def policy(self, key: str) -> Policy | None:
        return self._policies.get(key)

    def experiment(self, key: str) -> ExperimentDef:
        self.refresh()
        found = self._defs.get(key)
        if found is None:
            raise NotFound(
                f"no experiment named {key!r}",
                hint="define it under experiments in the workspace and apply it",
            )
        return found[1]

    def served_keys(self) -> list[str]:
        self.refresh()
        return sorted(self._defs)

    def close(self) -> None:
        for store in (self.exposures, self.sticky):
            close = getattr(store, "close", None)
            if close is not None:
                close()


def attach(
    decider: Any,
    *,
    seed: int | None = None,
    sync_interval: float = 2.0,
    background_sync: bool = True,
) -> ExperimentService:
    """Serve the store's experiments on a :class:`~personify.decide.service.Decider`."""
    exposures, sticky = open_experiment_stores(decider.personify.settings)

    def outcomes(policy: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = decider.log.outcomes(policy, limit=OUTCOME_LIMIT)
        return rows

    def now() -> float:
        stamp: float = decider.personify.clock.now().timestamp()
        return stamp

    def identities(profile_id: str) -> Mapping[str, Sequence[str]]:
        found: Mapping[str, Sequence[str]] = decider.personify.profile(profile_id)["identities"]
        return found

    service = ExperimentService(
        decider.store,
        decider.engine.register_policy,
        outcomes=outcomes,
        exposures=exposures,
        sticky=sticky,
        clock=now,
        seed=seed,
        sync_interval=sync_interval,
        background_sync=background_sync,
        decision=decider.log.get,
        identities=identities,
    )
    # An experiment applied while serving registers itself the first time a rule names it.
    decider.engine.add_policy_source(service.refresh)
    return service


TRANSITIONS = {"start": "running", "stop": "stopped", "ship": "shipped"}


def set_status(
    store: DefinitionStore, key: str, action: str, actor: str, *, variant: str | None = None
) -> dict[str, Any]:
    """Start, stop or ship an experiment: a new version of its definition with the status.

    Shipping names the variant everyone gets from now on (default: the one already named in
    ``shipped``). The new body is validated before it is written, so a bad ship (an unknown
    variant) changes nothing.
    """
    if action not in TRANSITIONS:
        raise InvalidInput(
            f"unknown action {action!r}",
            hint="use start, stop or ship",
            problems=[Problem("action", action)],
        )
    body = dict(store.get(KIND, key).body)
    body["status"] = TRANSITIONS[action]
    if action == "ship":
        body["shipped"] = variant or body.get("shipped")
    elif variant is not None:
        raise InvalidInput(
            "only ship takes a variant",
            hint=f"personify experiments ship {key} --variant <key>",
            problems=[Problem("variant", "only with ship")],
        )
    compile_experiment(key, body)
    written = store.put(KIND, key, body, actor, f"{action} experiment")
    return {
        "key": key,
        "status": body["status"],
        "shipped": body.get("shipped"),
        "version": written.version,
    }
