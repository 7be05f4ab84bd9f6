"""Request dependencies: the engine, write-key authentication and role-based API keys."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from starlette.types import Scope

from personify.errors import Forbidden, PersonifyError, Unauthorized, Unavailable
from personify.facade import Personify


async def engine(request: Request) -> Personify:
    p = request.app.state.personify
    assert isinstance(p, Personify)
    return p


Engine = Annotated[Personify, Depends(engine)]


def route_path(scope: Scope) -> str:
    """The path as routes see it (without the ``root_path`` a proxy may mount the app at)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def error_response(request: Request, exc: PersonifyError) -> Response:
    """The app's own answer to ``exc`` (for ASGI fast paths that bypass the routes)."""
    handlers = request.app.exception_handlers  # the most specific, as Starlette does
    handler = next(handlers[c] for c in type(exc).__mro__ if c in handlers)
    response = await handler(request, exc)
    assert isinstance(response, Response)
    return response


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


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a role and an id for the audit log (``admin-key`` or a key id)."""

    role: str
    actor: str


ROLES = ("admin", "marketer", "analyst", "decide")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_caller(p: Personify, authorization: str | None) -> Caller:
    """The caller a bearer token names: the bootstrap admin key or a stored API key."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        admin = p.settings.admin_key
        if admin and hmac.compare_digest(token, admin):
            return Caller("admin", "admin-key")
        key = p.privacy.keys.verify(token) if p.privacy is not None else None
        if key is not None:
            return Caller(key.role, f"key:{key.key_id}")
    if not p.settings.admin_key and (p.privacy is None or not p.privacy.keys.list()):
        raise Unavailable(
            "the admin API is disabled",
            hint="set PERSONIFY_ADMIN_KEY and restart the server (then create API keys)",
        )
    raise Unauthorized(
        "missing, wrong or revoked API key",
        hint="send 'Authorization: Bearer <key>' with PERSONIFY_ADMIN_KEY or a key from "
        "`personify keys create`",
    )


def authorize(
    p: Personify,
    request: Request,
    allowed: frozenset[str],
    route_path: str | None,
    authorization: str | None,
) -> Caller:
    """The caller of a request whose role is among ``allowed``, or the error to answer.

    Changes (non-GET) and reads under :data:`AUDITED_READS` are written to the audit log as
    ``"<METHOD> <route path>"`` (``route_path``, the route's template, e.g.
    ``/v1/profiles/{profile_id}``) with the request path as target.
    """
    caller = bearer_caller(p, authorization)
    if caller.role not in allowed:
        raise Forbidden(
            f"role {caller.role!r} may not {request.method} {request.url.path}",
            hint=f"use a key with one of the roles {', '.join(sorted(allowed))}",
        )
    request.state.caller = caller
    audited = request.method not in READ_METHODS or request.url.path.startswith(AUDITED_READS)
    if audited and p.privacy is not None:
        p.privacy.audit.record(
            caller.actor, f"{request.method} {route_path or request.url.path}", request.url.path
        )
    return caller


def require_role(*roles: str, write: tuple[str, ...] | None = None) -> Any:
    """A dependency that lets through the given roles (``admin`` always).

    With ``write``, reads (GET) take ``roles`` and every other method takes ``write``. The
    allowed roles are kept on the dependency (``allowed_roles(method)``) so the route-table
    test can check that every route declares them and that weaker roles are refused.
    Changes (non-GET) and profile reads are written to the audit log.
    """
    unknown = sorted((set(roles) | set(write or ())) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown roles {unknown}")
    read_set = frozenset(("admin", *roles))
    write_set = frozenset(("admin", *write)) if write is not None else read_set

    def allowed_roles(method: str) -> frozenset[str]:
        return read_set if method.upper() in READ_METHODS else write_set

    async def check(
        request: Request, p: Engine, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        route = request.scope.get("route")
        return authorize(
            p, request, allowed_roles(request.method), getattr(route, "path", None), authorization
        )

    check.allowed_roles = allowed_roles  # type: ignore[attr-defined]
    check.bearer_only = True  # type: ignore[attr-defined]
    return Depends(check)


def denied(request: Request) -> PersonifyError | None:
    """The authorization error of a request that failed before its dependencies ran.

    FastAPI decodes a JSON body before it solves dependencies, so a malformed body would
    answer 400 to a caller without a key; the error handler asks this first, so that such a
    caller learns nothing but 401/403.
    """
    dependant = getattr(request.scope.get("route"), "dependant", None)
    stack = list(getattr(dependant, "dependencies", ()))
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "allowed_roles", None)
        if roles is not None and getattr(dep.call, "bearer_only", False):
            try:
                caller = bearer_caller(
                    request.app.state.personify, request.headers.get("authorization")
                )
            except PersonifyError as exc:
                return exc
            if caller.role not in roles(request.method):
                return Forbidden(
                    f"role {caller.role!r} may not {request.method} {request.url.path}"
                )
            return None
        stack.extend(dep.dependencies)
    return None


AUDITED_READS = ("/v1/profiles", "/v1/consent", "/v1/privacy", "/v1/keys", "/v1/audit")

Admin = require_role()
"""Admin only (the bootstrap PERSONIFY_ADMIN_KEY or a key with role ``admin``)."""
Analyst = require_role("analyst")
"""Reading profiles and aggregates: analysts (and admins)."""
Marketer = require_role("marketer", "analyst", write=("marketer",))
"""Definitions: marketers change them; analysts may read them."""
AnalystReads = require_role("analyst", write=())
"""Analysts read; only admins change (model promotion and rollback)."""
Decide = require_role("decide")
"""The ``decide`` role (decisions and recommendations use ``api/decide.py``'s own check,
which the fast path shares; write keys may not call them)."""
