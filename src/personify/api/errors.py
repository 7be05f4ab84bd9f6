"""The one place errors become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from personify.api.deps import denied
from personify.errors import InvalidInput, PersonifyError, Problem

COLLECTION_PATHS = frozenset(
    {"/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch"}
)
"""The routes that take a write key (HTTP Basic); every other route takes a bearer key."""


def install(app: FastAPI) -> None:
    @app.exception_handler(PersonifyError)
    async def _personify_error(request: Request, exc: PersonifyError) -> JSONResponse:
        headers = None
        if exc.status == 401:
            scheme = "Basic" if request.url.path in COLLECTION_PATHS else "Bearer"
            headers = {"WWW-Authenticate": scheme}
        return JSONResponse(exc.as_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        refused = denied(request) if exc.status_code == 400 else None  # an unparsable body
        if refused is not None:
            return await _personify_error(request, refused)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = denied(request)  # no key, no validation details
        if refused is not None:
            return await _personify_error(request, refused)
        problems = [
            Problem(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.errors()
        ]
        err = InvalidInput(
            "request failed validation: " + "; ".join(f"{p.field} {p.message}" for p in problems),
            problems=problems,
        )
        return JSONResponse(err.as_dict(), status_code=err.status)
