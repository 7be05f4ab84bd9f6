"""Request dependencies: the engine, write-key and admin-key authentication."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from personify.errors import Unauthorized, Unavailable
from personify.facade import Personify


async def engine(request: Request) -> Personify:
    p = request.app.state.personify
    assert isinstance(p, Personify)
    return p


Engine = Annotated[Personify, Depends(engine)]


def basic_username(authorization: str | None) -> str | None:
    """The username of an HTTP Basic header (Segment sends the write key there)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(
            "malformed Basic authorization header",
            hint="base64-encode 'WRITE_KEY:' (the write key with an empty password)",
        ) from None
    return decoded.partition(":")[0] or None


async def require_admin(p: Engine, authorization: Annotated[str | None, Header()] = None) -> None:
    expected = p.settings.admin_key
    if not expected:
        raise Unavailable(
            "the admin API is disabled", hint="set PERSONIFY_ADMIN_KEY and restart the server"
        )
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        raise Unauthorized(
            "missing or wrong admin key", hint="send 'Authorization: Bearer <PERSONIFY_ADMIN_KEY>'"
        )


Admin = Depends(require_admin)
