"""``personify privacy``: consent, export and erasure of a person, and the audit log.

Export and erasure open the engine (the event store), so they run while the server is
stopped; against a running server use ``POST /v1/privacy/export`` and ``/erase``.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from personify.cli.common import console, friendly_errors
from personify.errors import InvalidInput

app = typer.Typer(help="Consent, data-subject export and erasure, audit log, PII keys.")

_USER = typer.Option(None, "--user-id", help="The person's userId.")
_ANON = typer.Option(None, "--anonymous-id", help="The person's anonymousId.")
_EMAIL = typer.Option(None, "--email", help="The person's email.")
_PHONE = typer.Option(None, "--phone", help="The person's phone number.")
MAX_VERSION = 200  # as POST /v1/consent
MAX_AUDIT_ID = 2**63 - 1  # SQLite's largest integer


def _check_writable(out: Path) -> None:
    """Refuse an output path that cannot be written, before any job is recorded."""
    parent = out.parent
    if out.is_dir():
        problem = "is a directory"
    elif not parent.is_dir():
        problem = "its directory does not exist"
    elif not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        problem = "is not writable"
    else:
        return
    raise InvalidInput(
        f"cannot write {out}: {problem}",
        hint="pass --out a file in an existing, writable directory",
    )


def _subject(
    user_id: str | None, anonymous_id: str | None, email: str | None, phone: str | None
) -> tuple[str, str]:
    from personify.privacy.subject import parse_subject

    return parse_subject(
        {"userId": user_id, "anonymousId": anonymous_id, "email": email, "phone": phone}
    )


@app.command("export")
@friendly_errors
def export(
    user_id: str | None = _USER,
    anonymous_id: str | None = _ANON,
    email: str | None = _EMAIL,
    phone: str | None = _PHONE,
    out: Path | None = typer.Option(None, help="Write the JSON here instead of printing it."),
) -> None:
    """Everything held about one person, as JSON."""
    from personify.platform import build
    from personify.privacy.subject import run_job

    subject = _subject(user_id, anonymous_id, email, phone)
    if out is not None:
        _check_writable(out)
    with build() as p:
        job = run_job(p, "export", subject, "cli")
    data = orjson.dumps(job["result"], option=orjson.OPT_INDENT_2)
    if out is None:
        console.print_json(data.decode())
        return
    out.write_bytes(data)
    console.print(
        f"wrote {out} ({job['summary']['events']} events); job {job['job_id']}", markup=False
    )


@app.command("erase")
@friendly_errors
def erase(
    user_id: str | None = _USER,
    anonymous_id: str | None = _ANON,
    email: str | None = _EMAIL,
    phone: str | None = _PHONE,
    yes: bool = typer.Option(False, "--yes", help="Confirm: erasure cannot be undone."),
    no_suppress: bool = typer.Option(
        False, "--no-suppress", help="Do not drop the person's future events."
    ),
) -> None:
    """Erase one person from every store and suppress their identities."""
    from personify.platform import build
    from personify.privacy.subject import run_job

    subject = _subject(user_id, anonymous_id, email, phone)
    if not yes:
        raise InvalidInput("erasure cannot be undone", hint="add --yes to confirm")
    with build() as p:
        job = run_job(p, "erase", subject, "cli", suppress=not no_suppress)
    table = Table("store", "removed", title=f"erasure {job['job_id']} ({job['status']})")
    for name, count in job["summary"].items():
        table.add_row(name, str(count))
    console.print(table)


@app.command("consent")
@friendly_errors
def consent(
    user_id: str | None = _USER,
    anonymous_id: str | None = _ANON,
    email: str | None = _EMAIL,
    phone: str | None = _PHONE,
    grant: list[str] = typer.Option([], help="Purposes to grant (repeatable)."),
    refuse: list[str] = typer.Option([], help="Purposes to refuse (repeatable)."),
    version: str | None = typer.Option(None, help="The consent wording version shown."),
) -> None:
    """Show a person's consent; with --grant/--refuse, record changes first (source 'cli')."""
    from personify.platform import build
    from personify.privacy.consent import ConsentChange, parse_purposes

    kind, value = _subject(user_id, anonymous_id, email, phone)
    both = sorted(set(grant) & set(refuse))
    if both:
        raise InvalidInput(
            f"both granted and refused: {', '.join(both)}",
            hint="name each purpose in either --grant or --refuse",
        )
    if version is not None and not (grant or refuse):
        raise InvalidInput(
            "--version only goes with --grant or --refuse",
            hint="it is the consent wording shown when the changes were made",
        )
    if version is not None and len(version) > MAX_VERSION:
        raise InvalidInput(
            f"--version is longer than {MAX_VERSION} characters", hint="for example --version v3"
        )
    with build() as p:
        assert p.privacy is not None
        pid = p.lookup(kind, value)
        if grant or refuse:
            wanted = {**dict.fromkeys(grant, True), **dict.fromkeys(refuse, False)}
            purposes = parse_purposes(wanted, "--grant/--refuse")
            at = p.clock.now().isoformat()
            p.privacy.consent_store.record(
                (pid, ConsentChange(k, v, "cli", at, version)) for k, v in purposes.items()
            )
            p.privacy.audit.record("cli", "consent.set", pid, {"purposes": purposes})
        view = p.profile(pid)
        current = p.privacy.consent.current(view)
        table = Table("purpose", "allowed", "why", title=f"consent of {pid}")
        for purpose, allowed in current.items():
            reason = p.privacy.may(purpose, view).reason
            table.add_row(escape(purpose), "yes" if allowed else "no", escape(reason))
        console.print(table)


@app.command("audit")
@friendly_errors
def audit(
    action: str | None = typer.Option(None, help="Exact action, or a prefix ending in '*'."),
    limit: int = typer.Option(50, min=1, max=1000, help="How many records (1-1000)."),
    after: int = typer.Option(0, min=0, max=MAX_AUDIT_ID, help="Only records after this id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """The audit log, oldest first."""
    from personify.config import Settings
    from personify.privacy.audit import AuditLog

    log = AuditLog(Settings().data_dir / "audit.sqlite")
    try:
        records = log.query(action=action, after=after, limit=limit)
    finally:
        log.close()
    if as_json:
        for record in records:
            typer.echo(orjson.dumps(record).decode())
        return
    table = Table("id", "at", "actor", "action", "target", title="audit log")
    for r in records:
        # actors and targets carry what people typed (ids, key names): shown literally
        cells = (str(r["id"]), r["at"], r["actor"], r["action"], r["target"] or "")
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)


@app.command("rotate-key")
@friendly_errors
def rotate_key(
    retire: bool = typer.Option(
        False,
        help="Then drop the old keys, once a check pass finds no stored value still sealed "
        "with them.",
    ),
    resume: bool = typer.Option(
        False, help="Add no key: finish an interrupted rotation with the current one."
    ),
) -> None:
    """Add a new PII key and re-encrypt every sealed value with it: profiles, the event log,
    the event store and the quarantine, in batches (values already under the new key are left
    alone, so an interrupted run can be finished with --resume).

    Run it while the server is stopped; against a running server use
    POST /v1/privacy/keys/rotate, which does the same in the background.
    """
    from typing import Any

    from personify.config import Settings
    from personify.platform import build
    from personify.privacy.rotation import check_settings, run_rotation

    settings = Settings()
    check_settings(settings)
    with build(settings) as p, console.status("re-encrypting...") as status:

        def progress(summary: dict[str, Any], store_done: bool) -> None:
            part = summary.get("check", summary)  # the check pass before --retire
            store = str(part.get("running", ""))
            name = store.removeprefix("check ")
            done, seen = part["resealed"].get(name, 0), part["examined"].get(name, 0)
            if store_done:
                console.print(f"{store}: looked at {seen:,}, re-encrypted {done:,}")
            else:
                status.update(f"{store}: looked at {seen:,}, re-encrypted {done:,}...")

        job = run_rotation(p, "cli", resume=resume, retire=retire, on_progress=progress)
    summary = job["summary"]
    n = summary["resealed"]
    retired = f"; retired {summary['retired']} old keys" if "retired" in summary else ""
    console.print(
        f"key {summary['key']}; re-encrypted {n['profiles']:,} profiles, {n['log']:,} log "
        f"messages, {n['events']:,} events, {n['quarantine']:,} quarantined items{retired} "
        f"(job {job['job_id']})"
    )


@app.command("retention")
@friendly_errors
def retention() -> None:
    """Purge events and quarantined payloads older than the retention settings (for cron)."""
    from personify.platform import build
    from personify.privacy.retention import purge

    with build() as p:
        report = purge(p, actor="cli")
    table = Table("rule or store", "removed", title="retention")
    for name, count in report.items():
        table.add_row(name, str(count))
    console.print(table)
