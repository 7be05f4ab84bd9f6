"""The Segment HTTP Tracking API: ``POST /v1/{track,identify,page,screen,group,alias,batch}``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from personify.api.deps import Engine, basic_username
from personify.errors import InvalidInput, PayloadTooLarge, Problem
from personify.events.collector import SHRINK_THE_MESSAGE, SPLIT_THE_BATCH
from personify.events.schema import MESSAGE_TYPES

router = APIRouter(tags=["collect"])


async def _read(request: Request, limit: int, too_large_hint: str) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"body is {declared} bytes; the limit is {limit}", hint=too_large_hint
        )
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(
            f"body is {len(body)} bytes; the limit is {limit}", hint=too_large_hint
        )
    return body


@router.post("/v1/batch")
async def batch(request: Request, p: Engine) -> Response:
    """Accept up to 2,500 messages; invalid ones are quarantined, not dropped."""
    limits = p.settings.collect
    body = await _read(request, limits.max_batch_bytes, SPLIT_THE_BATCH)
    data = p.collector.decode(
        body, request.headers.get("content-encoding"), limits.max_batch_bytes, SPLIT_THE_BATCH
    )
    source = p.collector.authenticate(
        basic_username(request.headers.get("authorization")), data.get("writeKey")
    )
    messages = data.get("batch")
    if not isinstance(messages, list):
        raise InvalidInput(
            "a batch needs a 'batch' array of messages",
            problems=[Problem("batch", "required, an array of Segment messages")],
        )
    if len(messages) > limits.max_batch_messages:
        raise PayloadTooLarge(
            f"batch has {len(messages)} messages; the limit is {limits.max_batch_messages}",
            hint="split the batch",
        )
    defaults: dict[str, Any] = {  # null counts as absent, as it always did
        k: data[k] for k in ("context", "integrations", "sentAt") if data.get(k) is not None
    }
    for key in ("context", "integrations"):  # merged into each message, so objects only
        if key in defaults and not isinstance(defaults[key], dict):
            raise InvalidInput(
                f"the batch-level {key!r} must be an object, got {type(defaults[key]).__name__}",
                hint=f'send {key} as a JSON object, e.g. "{key}": {{}}, or leave it out',
                problems=[Problem(key, "must be an object")],
            )
    async with p.admitted(len(messages)):
        result = await run_in_threadpool(
            p.collector.accept_batch, messages, source, defaults=defaults
        )
    return Response(orjson.dumps(result.as_dict()), media_type="application/json")


def _single(kind: str) -> Any:
    async def endpoint(request: Request, p: Engine) -> dict[str, Any]:
        limit = p.settings.collect.max_message_bytes
        body = await _read(request, max(limit, 1024), SHRINK_THE_MESSAGE)
        data = p.collector.decode(
            body, request.headers.get("content-encoding"), limit, SHRINK_THE_MESSAGE
        )
        source = p.collector.authenticate(
            basic_username(request.headers.get("authorization")), data.get("writeKey")
        )
        async with p.admitted():
            return await run_in_threadpool(p.collector.accept_one, data, kind, source)

    endpoint.__name__ = kind
    endpoint.__doc__ = f"Accept one Segment `{kind}` message."
    return endpoint


for _kind in MESSAGE_TYPES:
    router.add_api_route(f"/v1/{_kind}", _single(_kind), methods=["POST"])
