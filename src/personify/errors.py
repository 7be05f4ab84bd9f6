"""One error hierarchy for personify; every error knows its HTTP status.

::

    PersonifyError (500)
    ├── InvalidInput (400)            what the caller sent is wrong; `problems` says where
    │   ├── PayloadTooLarge (413)     a message or batch is over a limit
    │   └── UnsupportedMedia (415)    a body we cannot decode
    ├── Unauthorized (401)            missing or unknown write key / admin key
    ├── Forbidden (403)               a valid key whose role may not do this
    ├── NotFound (404)                no such profile, quarantined message, ...
    ├── Conflict (409)                the request contradicts stored state
    ├── RateLimited (429)             a key sent more requests than its rate allows
    └── Unavailable (503)             a store is busy or not configured

The API maps these to responses in one place (``personify.api.errors``); the CLI prints
``message`` and ``hint``. Messages say what was wrong; hints say how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a dotted path) and why."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class PersonifyError(Exception):
    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, hint: str | None = None, problems: list[Problem] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems = problems or []

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.problems:
            body["problems"] = [p.as_dict() for p in self.problems]
        return body


class InvalidInput(PersonifyError):
    status = 400
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class UnsupportedMedia(InvalidInput):
    status = 415
    code = "unsupported_media"


class Unauthorized(PersonifyError):
    status = 401
    code = "unauthorized"


class Forbidden(PersonifyError):
    status = 403
    code = "forbidden"


class NotFound(PersonifyError):
    status = 404
    code = "not_found"


class Conflict(PersonifyError):
    status = 409
    code = "conflict"


class RateLimited(PersonifyError):
    status = 429
    code = "rate_limited"


class Unavailable(PersonifyError):
    status = 503
    code = "unavailable"
