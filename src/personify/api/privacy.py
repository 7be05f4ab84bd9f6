"""Consent, data-subject rights (export, erasure, Segment-style regulations), the audit log,
and the per-key rate limit of the public endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from personify.api.deps import Admin, Analyst, Engine
from personify.api.keys import actor, privacy_of
from personify.errors import InvalidInput, NotFound, Problem, RateLimited
from personify.identity.normalize import normalize_email
from personify.privacy.consent import ConsentChange, parse_purposes
from personify.privacy.subject import SUBJECT_FIELDS, parse_subject, resolve, run_job

router = APIRouter(tags=["privacy"])

_SUBJECT_EXAMPLE = {"userId": "u123"}
MAX_SUBJECTS = 1000
# Segment's regulation types; both delete types also suppress unless "DELETE_ONLY".
REGULATIONS = {"SUPPRESS_WITH_DELETE", "DELETE_ONLY", "SUPPRESS_ONLY", "DELETE_INTERNAL"}
SUBJECT_TYPES = {"USER_ID": "userId", "ANONYMOUS_ID": "anonymousId", "EMAIL": "email"}
MAX_VERSION = 200
_CONSENT_FIELDS = {*SUBJECT_FIELDS, "purposes", "version"}
_REGULATION_FIELDS = {"regulationType", "subjectType", "subjectIds"}


def refuse_unknown(body: dict[str, Any], allowed: set[str], hint: str) -> None:
    """A 400 naming every field of ``body`` that is not in ``allowed`` (a typo such as
    ``versoin`` must not be silently dropped)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"send only {', '.join(sorted(allowed))}; {hint}",
            problems=[Problem(k, "unknown field") for k in unknown],
        )


# -- consent ----------------------------------------------------------------------------
@router.post("/v1/consent", dependencies=[Admin])
def set_consent(
    request: Request,
    p: Engine,
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"userId": "u1", "purposes": {"marketing_email": True}, "version": "v3"}]),
    ],
) -> dict[str, Any]:
    """Record consent changes for one person (by one identity); answers the current state."""
    refuse_unknown(
        body, _CONSENT_FIELDS, 'for example {"userId": "u1", "purposes": {"marketing_email": true}}'
    )
    kind, value = parse_subject({k: v for k, v in body.items() if k in SUBJECT_FIELDS})
    purposes = parse_purposes(body.get("purposes"), "purposes")
    version = body.get("version")
    if version is not None and (not isinstance(version, str) or len(version) > MAX_VERSION):
        raise InvalidInput(
            f"version must be a string of at most {MAX_VERSION} characters",
            hint='the consent wording version shown, for example "v3"',
            problems=[Problem("version", f"the wording version, at most {MAX_VERSION} characters")],
        )
    privacy = privacy_of(p)
    pid = p.lookup(kind, value)
    at = p.clock.now().isoformat()
    privacy.consent_store.record(
        (pid, ConsentChange(purpose, granted, "api", at, version))
        for purpose, granted in purposes.items()
    )
    privacy.audit.record(actor(request), "consent.set", pid, {"purposes": purposes})
    return {"profile_id": pid, "consent": privacy.consent.current(p.profile(pid))}


@router.get("/v1/consent", dependencies=[Analyst])
def get_consent(
    p: Engine,
    userId: Annotated[str | None, Query()] = None,  # noqa: N803 (Segment's field names)
    anonymousId: Annotated[str | None, Query()] = None,  # noqa: N803
    email: Annotated[str | None, Query()] = None,
    phone: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The current consent of a person and its full history."""
    kind, value = parse_subject(
        {"userId": userId, "anonymousId": anonymousId, "email": email, "phone": phone}
    )
    privacy = privacy_of(p)
    view = p.profile(p.lookup(kind, value))
    ids = [view["profile_id"], *view.get("merged_from", [])]
    return {
        "profile_id": view["profile_id"],
        "region": privacy.consent.region(view),
        "consent": privacy.consent.current(view),
        "history": privacy.consent_store.history(ids),
    }


# -- data-subject rights -----------------------------------------------------------------
def _subject_body() -> Any:
    return Body(examples=[_SUBJECT_EXAMPLE])


def _one_subject(body: dict[str, Any]) -> tuple[str, str]:
    refuse_unknown(body, set(SUBJECT_FIELDS), 'for example {"userId": "u123"}')
    return parse_subject(body)


@router.post("/v1/privacy/export", dependencies=[Admin])
async def export_subject(
    request: Request, p: Engine, body: Annotated[dict[str, Any], _subject_body()]
) -> dict[str, Any]:
    """Everything held about a person (profile, identities, events, consent history,
    segment memberships, scores, decisions), as a job that completes at once."""
    subject = _one_subject(body)
    return await run_in_threadpool(run_job, p, "export", subject, actor(request))


@router.post("/v1/privacy/erase", dependencies=[Admin])
async def erase_subject(
    request: Request, p: Engine, body: Annotated[dict[str, Any], _subject_body()]
) -> dict[str, Any]:
    """Erase a person from every store and suppress their identities; a completed job."""
    subject = _one_subject(body)
    return await run_in_threadpool(run_job, p, "erase", subject, actor(request))


@router.get("/v1/privacy/jobs/{job_id}", dependencies=[Admin])
def get_job(p: Engine, job_id: str) -> dict[str, Any]:
    """A privacy job's status and summary (and an export's result while this process runs)."""
    return privacy_of(p).jobs.get(job_id)


@router.post("/v1/privacy/keys/rotate", dependencies=[Admin], status_code=202)
def rotate_keys(
    request: Request,
    p: Engine,
    body: Annotated[
        dict[str, Any] | None, Body(examples=[{"retire": True}, {"resume": True}])
    ] = None,
) -> dict[str, Any]:
    """Add a PII key and re-encrypt every sealed value with it (profiles, log, events,
    quarantine) in the background while the server serves; a ``running`` job to follow at
    ``GET /v1/privacy/jobs/{job_id}``. ``retire`` then drops the old keys once a check pass
    finds nothing left under them; ``resume`` adds no key and finishes an earlier rotation."""
    from personify.privacy.rotation import run_rotation

    options = body or {}
    flags = {name: options.get(name, False) for name in ("retire", "resume")}
    problems = [Problem(k, "true or false") for k, v in flags.items() if not isinstance(v, bool)]
    unknown = sorted(set(options) - set(flags))
    problems += [Problem(k, "unknown option; use retire and resume") for k in unknown]
    if problems:
        raise InvalidInput(
            "invalid key rotation options", hint='for example {"retire": true}', problems=problems
        )
    return run_rotation(
        p, actor(request), retire=flags["retire"], resume=flags["resume"], background=True
    )


@router.post("/v1/regulations", dependencies=[Admin])
async def regulations(
    request: Request,
    p: Engine,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "regulationType": "SUPPRESS_WITH_DELETE",
                    "subjectType": "USER_ID",
                    "subjectIds": ["u1", "u2"],
                }
            ]
        ),
    ],
) -> dict[str, Any]:
    """Segment-style batch form: many subjects of one type, one job per subject. Every
    subject is checked first: one invalid id refuses the request before anyone is erased."""
    kind, subjects = _parse_regulation(body)
    who = actor(request)
    jobs = []
    for subject_id, subject in subjects:
        if kind == "SUPPRESS_ONLY":
            privacy = privacy_of(p)
            privacy.suppression.add(resolve(p, *subject).identities)
            privacy.audit.record(who, "privacy.suppress", privacy.pseudonym(*subject))
            jobs.append({"subject": subject_id, "status": "completed", "job_id": None})
            continue
        job = await run_in_threadpool(
            run_job, p, "erase", subject, who, suppress=kind != "DELETE_ONLY"
        )
        jobs.append({"job_id": job["job_id"], "status": job["status"]})
    return {"regulationType": kind, "jobs": jobs}


def _parse_regulation(body: dict[str, Any]) -> tuple[str, list[tuple[str, tuple[str, str]]]]:
    """The regulation type and every ``(subject id, (kind, value))``, all validated."""
    hint = (
        'for example {"regulationType": "SUPPRESS_WITH_DELETE", '
        '"subjectType": "USER_ID", "subjectIds": ["u1"]}'
    )
    refuse_unknown(body, _REGULATION_FIELDS, hint)
    kind = str(body.get("regulationType", "")).upper()
    subject_type = str(body.get("subjectType", "")).upper()
    ids = body.get("subjectIds")
    problems = []
    if kind not in REGULATIONS:
        problems.append(Problem("regulationType", f"one of {', '.join(sorted(REGULATIONS))}"))
    if subject_type not in SUBJECT_TYPES:
        problems.append(Problem("subjectType", f"one of {', '.join(SUBJECT_TYPES)}"))
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= MAX_SUBJECTS
        or not all(isinstance(i, str) and i.strip() for i in ids)
    ):
        problems.append(Problem("subjectIds", f"1 to {MAX_SUBJECTS} non-empty strings"))
    subjects: list[tuple[str, tuple[str, str]]] = []
    if not problems:
        assert isinstance(ids, list)
        field = SUBJECT_TYPES[subject_type]
        for n, subject_id in enumerate(ids):
            where = f"subjectIds[{n}]"
            try:
                subject = parse_subject({field: subject_id})
            except InvalidInput:
                problems.append(Problem(where, "a non-empty string of at most 1024 characters"))
                continue
            if field == "email" and normalize_email(subject[1]) is None:
                problems.append(Problem(where, "not a valid email"))
                continue
            subjects.append((subject_id, subject))
    if problems:
        raise InvalidInput(
            "invalid regulation request (nothing was done)", hint=hint, problems=problems[:20]
        )
    return ("DELETE_ONLY" if kind == "DELETE_INTERNAL" else kind), subjects


@router.post("/v1/privacy/retention", dependencies=[Admin])
async def retention(request: Request, p: Engine) -> dict[str, Any]:
    """Purge what is older than the retention settings now; answers what was removed."""
    from personify.privacy.retention import purge

    report = await run_in_threadpool(purge, p, None, actor(request))
    return {"removed": report}


@router.get("/v1/privacy/aggregates/segments", dependencies=[Analyst])
def noisy_segment_sizes(p: Engine) -> dict[str, Any]:
    """Segment sizes with Laplace noise (``privacy.dp_epsilon``), for sharing outside."""
    from personify.privacy.dp import noisy_counts

    epsilon = p.settings.privacy.dp_epsilon
    if epsilon is None:
        raise NotFound(
            "differentially private aggregates are off",
            hint="set PERSONIFY_PRIVACY__DP_EPSILON (for example 1.0) and restart",
        )
    return {"epsilon": epsilon, "sizes": noisy_counts(p.stores.segments.sizes(), epsilon)}


# -- audit ------------------------------------------------------------------------------
@router.get("/v1/audit", dependencies=[Admin])
def audit(
    p: Engine,
    action: Annotated[str | None, Query()] = None,
    actor_id: Annotated[str | None, Query(alias="actor")] = None,
    target: Annotated[str | None, Query()] = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Audit records oldest first; page with ``after`` (the last id seen)."""
    records = privacy_of(p).audit.query(
        action=action, actor=actor_id, target=target, after=after, limit=limit
    )
    return {"records": records, "next_after": records[-1]["id"] if records else after}


# -- rate limit -------------------------------------------------------------------------
PUBLIC_PREFIXES = (
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
    "/v1/decide",
    "/v1/recommendations",
)


class RateLimit:
    """ASGI middleware: a token bucket per key (the Authorization header, else the client
    address) on the public endpoints; over the limit answers 429 with ``Retry-After``."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        privacy = getattr(self.owner.state.personify, "privacy", None)
        if privacy is None or not path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        key = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        if key is None:
            client = scope.get("client")
            key = f"addr:{client[0] if client else '-'}".encode()
        wait = privacy.limiter.take(key.decode("latin-1"))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        err = RateLimited(
            f"too many requests for this key ({privacy.limiter.rate:g} per second)",
            hint=f"retry after {wait:.2f} s (Segment SDKs back off on 429)",
        )
        await send(
            {
                "type": "http.response.start",
                "status": err.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(max(1, round(wait))).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(err.as_dict())})


def install(app: FastAPI) -> None:
    """Add the privacy and key routers and the rate limit to an app."""
    from personify.api import keys

    app.include_router(router)
    app.include_router(keys.router)
    app.add_middleware(RateLimit, owner=app)
