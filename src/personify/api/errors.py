"""The one place errors become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from personify.errors import InvalidInput, PersonifyError, Problem

ADMIN_PREFIXES = ("/v1/profiles", "/v1/quarantine")


def install(app: FastAPI) -> None:
    @app.exception_handler(PersonifyError)
    async def _personify_error(request: Request, exc: PersonifyError) -> JSONResponse:
        headers = None
        if exc.status == 401:
            scheme = "Bearer" if request.url.path.startswith(ADMIN_PREFIXES) else "Basic"
            headers = {"WWW-Authenticate": scheme}
        return JSONResponse(exc.as_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            Problem(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.errors()
        ]
        err = InvalidInput(
            "request failed validation: " + "; ".join(f"{p.field} {p.message}" for p in problems),
            problems=problems,
        )
        return JSONResponse(err.as_dict(), status_code=err.status)
