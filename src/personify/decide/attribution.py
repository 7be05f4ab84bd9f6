"""Rewards: events that carry ``properties.decision_id`` are credited to that decision.

The profile processor hands every processed message to its observers; this one keeps the
events that close the loop on a decision:

* ``Content Viewed`` and ``Content Clicked`` — the person saw or clicked what was decided;
* ``Order Completed`` — a conversion, worth its revenue (Segment's ``revenue``, else
  ``total``, else the products);
* ``Content Dismissed`` — "do not show again": the content is never shown to that person
  again (if it is dismissible); ``properties.content_id`` may name the content when there is
  no decision id.

Each message is stored once by ``messageId``, so replays and retries change nothing. As an
observer of the profile processor (``personify.profiles.processor.Observer``) it also stores
its checkpoint in the same transaction as the rewards, so after a crash it resumes exactly
where its results end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from personify.decide.log import (
    CONVERTED,
    DECISION_ID,
    DISMISSED,
    REWARD_EVENTS,
    DecisionLog,
    Dismissal,
    Reward,
)
from personify.profiles.records import order_amount

_WATCHED = frozenset((*REWARD_EVENTS, DISMISSED))


class Observed(Protocol):
    """One processed message and the profile it was applied to."""

    @property
    def message(self) -> Mapping[str, Any]: ...

    @property
    def profile_id(self) -> str | None: ...


class RewardAttributor:
    """Records rewards and dismissals in the decision log (idempotent by ``messageId``)."""

    name = "rewards"

    def __init__(self, log: DecisionLog) -> None:
        self._log = log

    def checkpoint(self) -> int:
        """The event-log offset up to which rewards are stored."""
        return self._log.checkpoint(self.name)

    def observe(
        self,
        events: Sequence[Observed],
        profiles: Mapping[str, Any] | None = None,
        checkpoint: int | None = None,
    ) -> None:
        """Credit the reward events among ``events``; store ``checkpoint`` with them."""
        mark = (self.name, checkpoint) if checkpoint is not None else None
        wanted = [e for e in events if _watched(e.message)]
        if not wanted:
            if mark is not None:
                self._log.add_rewards([], [], mark)
            return
        ids = [did for e in wanted if (did := _decision_id(e.message)) is not None]
        decisions = self._log.units_of(ids) if ids else {}
        rewards: list[Reward] = []
        dismissals: list[Dismissal] = []
        for item in wanted:
            if item.message["event"] == DISMISSED:
                dismissals.extend(_dismissals(item, decisions))
            elif (reward := _reward(item)) is not None:
                rewards.append(reward)
        if rewards or dismissals or mark is not None:
            self._log.add_rewards(rewards, dismissals, mark)


def _at(message: Mapping[str, Any]) -> str:
    return str(message.get("timestamp") or message.get("receivedAt") or "")


def _reward(item: Observed) -> Reward | None:
    message = item.message
    did = _decision_id(message)
    if did is None:
        return None
    props = message.get("properties") or {}
    value = order_amount(props) if message["event"] == CONVERTED else 1.0
    return Reward(
        str(message["messageId"]), did, str(message["event"]), value, item.profile_id, _at(message)
    )


def _dismissals(
    item: Observed, decisions: Mapping[str, tuple[str | None, str | None]]
) -> list[Dismissal]:
    message = item.message
    did = _decision_id(message)
    decided_unit, content = decisions.get(did or "", (None, None))
    content = content or _text((message.get("properties") or {}).get("content_id"))
    if not content:
        return []
    # the person now, and whoever the decision was made for (an anonymous visitor who has
    # since logged in is the same person under another unit)
    units = sorted({u for u in (item.profile_id, decided_unit) if u})
    mid = str(message["messageId"])
    return [Dismissal(f"{mid}:{unit}", unit, content, did, _at(message)) for unit in units]


def _watched(message: Mapping[str, Any]) -> bool:
    return (
        message.get("type") == "track"
        and message.get("event") in _WATCHED
        and isinstance(message.get("messageId"), str)
    )


def _decision_id(message: Mapping[str, Any]) -> str | None:
    props = message.get("properties")
    did = props.get("decision_id") if isinstance(props, Mapping) else None
    return did if isinstance(did, str) and DECISION_ID.fullmatch(did) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
