"""The collector: authenticates, decodes, validates and durably accepts Segment messages.

It is transport-agnostic: the HTTP API, the importers and the Python API all hand it raw
messages. A message is acknowledged only after the event log has made it durable. Inside a
batch, a message that fails validation is quarantined with the reason instead of rejecting
the batch; a single call that fails validation is answered with the problems.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from personify.clock import Clock
from personify.config import CollectSettings
from personify.errors import (
    InvalidInput,
    PayloadTooLarge,
    Problem,
    Unauthorized,
    UnsupportedMedia,
)
from personify.events.schema import MESSAGE_TYPES, validate_message
from personify.identity.normalize import JunkFilter
from personify.profiles.records import iso
from personify.storage.ports import EventLog, QuarantineStore

# What to do about a body over its size limit, by what the body holds (see ``decode``).
SPLIT_THE_BATCH = "split the batch into smaller requests"
SHRINK_THE_MESSAGE = "move large payloads out of the event (send ids, not blobs)"
# The times an event may be placed at, after clock-skew correction: not before the Unix
# epoch (earlier dates are defaults or parsing errors, not events), and not more than a day
# after it was received (a client clock that far ahead without a sentAt to correct it).
EARLIEST_EVENT: Final = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE: Final = timedelta(days=1)


@dataclass
class BatchResult:
    """What happened to a batch: how many were accepted and which were quarantined."""

    accepted: int = 0
    duplicates: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
        }


def content_message_id(raw: Mapping[str, Any]) -> str:
    """A message id derived from the content, for clients that send none (retries dedupe)."""
    return (
        "h-"
        + hashlib.blake2b(
            orjson.dumps(raw, option=orjson.OPT_SORT_KEYS), digest_size=16
        ).hexdigest()
    )


class Collector:
    def __init__(
        self,
        event_log: EventLog,
        quarantine: QuarantineStore,
        settings: CollectSettings,
        write_keys: Mapping[str, str],
        junk: JunkFilter,
        clock: Clock,
    ) -> None:
        self._log = event_log
        self._quarantine = quarantine
        self._settings = settings
        self._write_keys = dict(write_keys)
        self._junk = junk
        self._clock = clock
        # The privacy gate (``Privacy.gate``): True drops a message that names an erased
        # (suppressed) identity, counted here; it may also minimize the message in place.
        self.suppress: Callable[[dict[str, Any]], bool] | None = None
        self.suppressed = 0

    # -- transport helpers ------------------------------------------------------------------
    def authenticate(self, basic_user: str | None, body_key: object) -> str:
        """The source name for a write key given as Basic username or ``writeKey`` field."""
        key = basic_user or (body_key if isinstance(body_key, str) else None)
        if not self._write_keys:
            raise Unauthorized(
                "no write keys are configured, so the collector accepts nothing",
                hint="set PERSONIFY_WRITE_KEYS to a comma-separated list of write keys",
            )
        if not key:
            raise Unauthorized(
                "missing write key",
                hint="send the write key as the HTTP Basic username (empty password) "
                "or as 'writeKey' in the body",
            )
        source = self._write_keys.get(key)
        if source is None:
            raise Unauthorized(
                "unknown write key", hint="use one of the keys listed in PERSONIFY_WRITE_KEYS"
            )
        return source

    def decode(
        self, body: bytes, encoding: str | None, limit: int, too_large_hint: str
    ) -> dict[str, Any]:
        """Decompress (gzip/deflate) and parse a JSON object body within ``limit`` bytes.

        ``too_large_hint`` tells the sender what to do about a body over ``limit``: a batch
        can be split (:data:`SPLIT_THE_BATCH`), one message cannot (:data:`SHRINK_THE_MESSAGE`).
        """
        encoding = (encoding or "identity").strip().lower()
        if encoding == "gzip":
            try:
                body = _bounded_inflate(
                    body, 16 + zlib.MAX_WBITS, self._settings.max_decompressed_bytes, too_large_hint
                )
            except (OSError, EOFError, zlib.error) as exc:
                raise UnsupportedMedia(
                    f"body is not valid gzip: {exc}",
                    hint="send plain JSON or a complete gzip stream",
                ) from None
        elif encoding == "deflate":
            try:
                body = _bounded_inflate(
                    body, zlib.MAX_WBITS, self._settings.max_decompressed_bytes, too_large_hint
                )
            except (EOFError, zlib.error) as exc:
                raise UnsupportedMedia(f"body is not valid deflate data: {exc}") from None
        elif encoding != "identity":
            raise UnsupportedMedia(
                f"unsupported Content-Encoding {encoding!r}", hint="use gzip or no encoding"
            )
        if len(body) > limit:
            raise PayloadTooLarge(
                f"body is {len(body)} bytes; the limit is {limit}", hint=too_large_hint
            )
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                f"malformed JSON: {exc}",
                hint="send a JSON object encoded as UTF-8",
                problems=[Problem("(body)", str(exc))],
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput(
                "the body must be a JSON object",
                problems=[Problem("(body)", f"got {type(data).__name__}")],
            )
        return data

    # -- normalization ----------------------------------------------------------------------
    def normalize(
        self,
        raw: Mapping[str, Any],
        *,
        source: str,
        received_at: datetime,
        prefix: str = "",
        check_size: bool = True,
        received_iso: str | None = None,
    ) -> dict[str, Any]:
        """Validate a raw message and return the record written to the log."""
        if check_size:
            try:
                size = len(orjson.dumps(raw))
            except orjson.JSONEncodeError as exc:
                raise _unserializable(exc, prefix) from None
            if size > self._settings.max_message_bytes:
                raise PayloadTooLarge(
                    f"message is {size} bytes; the limit is {self._settings.max_message_bytes}",
                    hint=SHRINK_THE_MESSAGE,
                    problems=[Problem(prefix.rstrip(".") or "(message)", "message too large")],
                )
        msg = validate_message(raw, prefix=prefix)
        user = self._junk.clean(msg.get("userId"))
        anon = self._junk.clean(msg.get("anonymousId"))
        if user is None and anon is None:
            sent_ids = [(k, msg[k]) for k in ("userId", "anonymousId") if msg.get(k)]
            raise InvalidInput(
                f"identifier {sent_ids[0][1]!r} is a placeholder, not an identity",
                hint="send a real userId, or a stable anonymousId for visitors",
                problems=[
                    Problem(f"{prefix}{k}", f"{v!r} is on the junk-value list") for k, v in sent_ids
                ],
            )
        original = msg.get("originalTimestamp") or msg.get("timestamp")
        sent = msg.get("sentAt")
        if original is not None and original.tzinfo is None:
            original = original.replace(tzinfo=received_at.tzinfo)
        if sent is not None and sent.tzinfo is None:
            sent = sent.replace(tzinfo=received_at.tzinfo)
        try:
            if original is not None and sent is not None:
                corrected: datetime | None = received_at - (sent - original)
            else:
                corrected = original or received_at
        except OverflowError:  # e.g. sentAt in year 1 and timestamp in year 9999
            corrected = None
        if corrected is None or not (EARLIEST_EVENT <= corrected <= received_at + FUTURE_TOLERANCE):
            used = "originalTimestamp" if msg.get("originalTimestamp") else "timestamp"
            skewed = original is not None and sent is not None
            raise _out_of_range(used, skewed, corrected, received_at, prefix)
        # Client timestamps are kept as the client wrote them (already validated above).
        for name, value in (("sentAt", sent), ("originalTimestamp", original)):
            if value is not None:
                given = raw.get(name) if name in raw else raw.get("timestamp")
                msg[name] = given if isinstance(given, str) else value.isoformat()
        received_text = received_iso or iso(received_at)
        # A client whose clock agrees with itself (sentAt == originalTimestamp, the usual
        # case in a flushed batch) gets exactly receivedAt: no second formatting needed.
        msg["timestamp"] = received_text if corrected == received_at else iso(corrected)
        msg["receivedAt"] = received_text
        if "messageId" not in msg:
            try:
                msg["messageId"] = content_message_id(raw)
            except orjson.JSONEncodeError as exc:
                raise _unserializable(exc, prefix) from None
        msg["_meta"] = {"source": source}
        return msg

    # -- accepting ----------------------------------------------------------------------------
    def quarantine_raw(self, items: list[dict[str, Any]], source: str) -> list[str]:
        """Quarantine records that never became messages (e.g. unparseable import lines)."""
        now = iso(self._clock.now())
        return self._quarantine.add(
            [{"received_at": now, "source": source, "problems": [], **item} for item in items]
        )

    def accept_one(self, raw: Mapping[str, Any], kind: str, source: str) -> dict[str, Any]:
        """A single ``/v1/<type>`` call: validate, make durable, or raise the problems."""
        if kind not in MESSAGE_TYPES:
            raise InvalidInput(f"unknown message type {kind!r}")
        body = dict(raw)
        body.pop("writeKey", None)
        if body.get("type", kind) != kind:
            raise InvalidInput(
                f"type {body['type']!r} sent to the /v1/{kind} endpoint",
                problems=[Problem("type", f"must be {kind!r} here or omitted")],
            )
        body["type"] = kind
        msg = self.normalize(body, source=source, received_at=self._clock.now())
        if self.suppress is not None and self.suppress(msg):
            self.suppressed += 1
            return {"success": True, "accepted": 0, "duplicates": 0}
        try:
            record = orjson.dumps(msg)
        except orjson.JSONEncodeError as exc:
            raise _unserializable(exc, "") from None
        new = self._log.publish([(msg["messageId"], record)])
        return {"success": True, "accepted": new, "duplicates": 1 - new}

    def accept_batch(
        self,
        raws: Iterable[object],
        source: str,
        *,
        defaults: Mapping[str, Any] | None = None,
        check_size: bool = True,
        received_at: datetime | None = None,
        locate: Callable[[int], str] | None = None,
    ) -> BatchResult:
        """Accept many messages: valid ones become durable, invalid ones are quarantined.

        ``defaults`` are batch-level ``context``/``integrations``/``sentAt`` merged into each
        message (message fields win). Problems name a message ``batch[i]``, or as ``locate(i)``
        says where it came from (``line 1303: timestamp ...`` for an imported file).
        """
        received = received_at or self._clock.now()
        received_iso = iso(received)
        defaults = defaults or {}
        result = BatchResult()
        good: list[tuple[str, bytes]] = []
        bad: list[dict[str, Any]] = []
        for i, raw in enumerate(raws):
            merged = _merge_defaults(raw, defaults)
            prefix = f"batch[{i}]." if locate is None else ""
            try:
                msg = self.normalize(
                    merged,
                    source=source,
                    received_at=received,
                    prefix=prefix,
                    check_size=check_size,
                    received_iso=received_iso,
                )
            except InvalidInput as exc:
                problem = exc if locate is None else _located(exc, locate(i))
                bad.append(_quarantined(problem, received_iso, source, merged, i))
                continue
            if self.suppress is not None and self.suppress(msg):
                self.suppressed += 1
                continue
            try:
                good.append((msg["messageId"], orjson.dumps(msg)))
            except orjson.JSONEncodeError as exc:  # cheaper here than scanning every message
                problem = _unserializable(exc, prefix)
                problem = problem if locate is None else _located(problem, locate(i))
                bad.append(_quarantined(problem, received_iso, source, merged, i))
        if bad:
            ids = self._quarantine.add([{k: v for k, v in b.items() if k != "index"} for b in bad])
            for item, qid in zip(bad, ids, strict=True):
                payload = item["payload"]
                result.quarantined.append(
                    {
                        "index": item["index"],
                        "id": qid,
                        "messageId": payload.get("messageId")
                        if isinstance(payload, dict)
                        else None,
                        "reason": item["reason"],
                        "problems": item["problems"],
                    }
                )
        new = self._log.publish(good)
        result.accepted = new
        result.duplicates = len(good) - new
        return result


def _unserializable(exc: TypeError, prefix: str) -> InvalidInput:
    """The error for a message JSON cannot hold (an integer beyond 64 bits, an object)."""
    return InvalidInput(
        f"message cannot be stored as JSON: {exc}",
        hint="send integers within 64 bits (larger ones as strings) and only JSON values",
        problems=[Problem(prefix.rstrip(".") or "(message)", f"not storable as JSON: {exc}")],
    )


def _located(exc: InvalidInput, where: str) -> InvalidInput:
    """``exc`` (raised with no field prefix) naming the message by ``where``."""
    return InvalidInput(
        f"{where}: {exc.message}",
        hint=exc.hint,
        problems=[
            Problem(where if p.field == "(message)" else f"{where}: {p.field}", p.message)
            for p in exc.problems
        ],
    )


def _quarantined(
    exc: InvalidInput, received_iso: str, source: str, payload: object, index: int
) -> dict[str, Any]:
    return {
        "received_at": received_iso,
        "source": source,
        "reason": exc.message,
        "problems": [p.as_dict() for p in exc.problems],
        "payload": _storable(payload),
        "index": index,
    }


def _storable(value: Any) -> Any:
    """``value`` as JSON can hold it: what orjson cannot write becomes its text.

    A quarantined payload is kept to be looked at and replayed; an integer beyond 64 bits in
    it must not make the quarantine fail as well. (Only refused messages come through here.)
    """
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _as_json(value)
    return value


def _as_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    if value is None or isinstance(value, str | bool | float):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    return str(value)


def _merge_defaults(raw: object, defaults: Mapping[str, Any]) -> Any:
    if not isinstance(raw, dict) or not defaults:
        return raw
    merged = dict(raw)
    for key in ("context", "integrations"):
        base = defaults.get(key)
        if isinstance(base, dict):
            own = merged.get(key)
            merged[key] = (
                {**base, **own} if isinstance(own, dict) else (own if key in merged else dict(base))
            )
    if "sentAt" not in merged and defaults.get("sentAt") is not None:
        merged["sentAt"] = defaults["sentAt"]
    return merged


def _bounded_inflate(body: bytes, wbits: int, limit: int, too_large_hint: str) -> bytes:
    """Decompress at most ``limit`` bytes (a small gzip bomb cannot exhaust memory)."""
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, limit + 1)
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed body exceeds {limit} bytes", hint=too_large_hint)
    if not d.eof:
        raise EOFError("truncated compressed stream")
    return out


__all__ = ["BatchResult", "Collector", "content_message_id"]


def _out_of_range(
    used: str, skewed: bool, corrected: datetime | None, received_at: datetime, prefix: str
) -> InvalidInput:
    """The error for a message whose time falls outside ``EARLIEST_EVENT`` .. receipt plus
    ``FUTURE_TOLERANCE``: it names the field the time came from (``used``), and ``sentAt``
    too when the clock-skew correction (``skewed``) is what moved it there."""
    try:  # an offset near year 1 or 9999 has no UTC date
        day: str | None = None if corrected is None else iso(corrected)[:10]
    except OverflowError:
        day = None
    at = "outside the representable dates" if day is None else f"at {day}"
    example = iso(received_at)[:19] + "Z"
    by = f"{used} with the sentAt correction" if skewed else used
    problems = [
        Problem(
            f"{prefix}{used}",
            f"{by} places the event {at}: accepted times run from "
            f"{EARLIEST_EVENT:%Y-%m-%d} to one day after receipt; send when the event "
            f"happened, e.g. {example}",
        )
    ]
    if skewed:
        problems.append(
            Problem(
                f"{prefix}sentAt",
                f"the event time is receivedAt - (sentAt - {used}): send sentAt as the time "
                f"the batch was sent, by the same clock as {used}",
            )
        )
    return InvalidInput(
        f"the event's time ({day or 'unrepresentable'}) is out of range",
        hint="fix the client's clock or the time field; a message set aside in quarantine "
        "can be replayed with a corrected payload (personify quarantine replay ID --payload)",
        problems=problems,
    )
