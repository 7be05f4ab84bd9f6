"""PII key rotation: a new key, and every sealed value of every store sealed again with it.

With ``privacy.encrypt_pii`` the profile documents, the event log's payloads, the event
store's ``payload`` column and the quarantined payloads hold values sealed with the keyring
(:mod:`personify.privacy.pii`). A rotation:

1. adds a key to ``<data_dir>/pii.keys`` and makes it current;
2. switches every process that seals to it: the processing worker first (under ``serve``),
   so that it can read what the API process seals from then on, then this process;
3. passes over the stores in batches (profiles, events, log, quarantine) and seals again
   each value that names an older key. Under ``serve`` the profile and event passes run in
   the worker, which owns the event store and writes profiles (each profile batch under the
   processor's lock); log and quarantine rows are swapped only while they still hold what
   was read, so a concurrent erasure wins. A value already under the current key is left
   alone: a pass can be repeated, and an interrupted rotation is finished by running it
   again with ``resume`` (no new key);
4. makes the replaced bytes leave the disk: log and quarantine rows are swapped with
   ``secure_delete`` and their WAL emptied, ``state.sqlite`` is rebuilt (VACUUM, when
   ``privacy.vacuum_after_erase``) and the DuckDB file compacted after a pass that changed it;
5. with ``retire``, passes over every store once more, and drops the old keys only when that
   pass found nothing left to seal again.

It runs as a tracked privacy job with an audit record: ``POST /v1/privacy/keys/rotate``
answers at once and works in the background while the server serves;
``personify privacy rotate-key`` runs it in the foreground with the server stopped.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from personify.config import Settings
from personify.errors import Conflict, InvalidInput, PersonifyError, Unavailable
from personify.privacy.db import scrub
from personify.privacy.pii import (
    KEY_FILE,
    FieldCipher,
    Keyring,
    Resealed,
    load_keyring,
    retire_keys,
    rotate_keyring,
    with_new_key,
)

if TYPE_CHECKING:
    from personify.facade import Personify, Stores
    from personify.profiles.worker import RemoteEventStore

log = logging.getLogger(__name__)

STORES = ("profiles", "events", "log", "quarantine")
# The passes the processing worker runs under ``serve``: it owns the event store, and it is
# the only writer of profile documents.
WORKER_STORES = ("profiles", "events")
_FILES = {"profiles": "state.sqlite", "log": "log.sqlite", "quarantine": "quarantine.sqlite"}
_BATCH = {"profiles": 500, "events": 10_000, "log": 1000, "quarantine": 1000}
_REPORT_EVERY_S = 0.5
_LOCAL_LOCK = threading.Lock()  # one rotation at a time in a process without a keyring file

# (store, values looked at so far, values sealed again so far), after each batch
Progress = Callable[[str, int, int], None]
# (the rotation's summary so far, whether a store's pass just finished)
Report = Callable[[dict[str, Any], bool], None]


def check_settings(settings: Settings) -> None:
    """Rotation needs sealing on and a keyring this engine manages (not ``pii_key``)."""
    if not settings.privacy.encrypt_pii or settings.privacy.pii_key:
        raise InvalidInput(
            "key rotation needs PERSONIFY_PRIVACY__ENCRYPT_PII=true and the keyring file",
            hint="a key given in PERSONIFY_PRIVACY__PII_KEY is rotated by whoever manages it",
        )


def _keyring_dir(settings: Settings) -> Path | None:
    """Where the keyring file is (None: an in-memory keyring, for the memory backends)."""
    return settings.data_dir if settings.state_backend == "sqlite" else None


def ciphers(stores: Stores) -> list[FieldCipher]:
    """The ciphers the sealing wrappers of these stores use (one, shared, in practice)."""
    from personify.privacy.encrypted_store import EncryptedProfileStore
    from personify.privacy.sealing import SealingEventLog, SealingEventStore, SealingQuarantine

    found: list[FieldCipher] = []
    for store in (stores.profiles, stores.log, stores.events, stores.quarantine):
        if isinstance(store, EncryptedProfileStore):
            cipher = store.cipher
        elif isinstance(store, SealingEventLog | SealingEventStore | SealingQuarantine):
            cipher = store.sealer.cipher
        else:
            continue
        if all(cipher is not c for c in found):
            found.append(cipher)
    return found


class Resealer:
    """The rotation work one process does on its own stores.

    Under ``serve`` the worker serves :meth:`reload_keys` and :meth:`reseal` to the API
    process over the worker socket (``privacy_reload_keys``, ``privacy_reseal``).
    """

    def __init__(self, p: Personify) -> None:
        self._p = p

    def use(self, ring: Keyring) -> str:
        for cipher in ciphers(self._p.stores):
            cipher.use(ring)
        return ring.current

    def current(self) -> str | None:
        """The key id this process seals with (None if nothing here is sealed)."""
        found = ciphers(self._p.stores)
        return found[0].ring.current if found else None

    def reload_keys(self) -> str:
        """Take the keyring file as it is now (another process rotated or retired keys)."""
        folder = _keyring_dir(self._p.settings)
        if folder is None:
            raise Unavailable("an in-memory keyring cannot be reloaded from a file")
        return self.use(load_keyring(None, folder))

    def reseal(
        self, store: str, batch_size: int | None = None, on_batch: Progress | None = None
    ) -> dict[str, int]:
        """One pass over ``store``: ``{"examined", "resealed"}``."""
        batches = self._batches(store, batch_size or _BATCH[store])
        lock: AbstractContextManager[Any] = nullcontext()
        if store == "profiles":  # documents are written whole: never beside a processor step
            lock = getattr(self._p.processor, "lock", None) or nullcontext()
        examined = resealed = 0
        while True:
            with lock:
                batch = next(batches, None)
            if batch is None:
                return {"examined": examined, "resealed": resealed}
            examined += batch.examined
            resealed += batch.resealed
            if on_batch is not None:
                on_batch(store, examined, resealed)

    def _batches(self, store: str, batch_size: int) -> Iterator[Resealed]:
        from personify.privacy.encrypted_store import EncryptedProfileStore
        from personify.privacy.sealing import (
            SealingEventLog,
            SealingEventStore,
            SealingQuarantine,
        )

        stores = self._p.stores
        if store == "profiles" and isinstance(stores.profiles, EncryptedProfileStore):
            return stores.profiles.reseal_batches(batch_size)
        if store == "events" and isinstance(stores.events, SealingEventStore):
            return stores.events.reseal_batches(batch_size)
        if store == "log" and isinstance(stores.log, SealingEventLog):
            return stores.log.reseal_batches(batch_size)
        if store == "quarantine" and isinstance(stores.quarantine, SealingQuarantine):
            return stores.quarantine.reseal_batches(batch_size)
        raise Unavailable(
            f"the {store} store of this process is not sealed",
            hint="set PERSONIFY_PRIVACY__ENCRYPT_PII=true; under `personify serve` the "
            "event store is re-sealed by the processing worker",
        )


class _Exclusive:
    """One rotation at a time per data directory (a lock file), or per process."""

    def __init__(self, settings: Settings) -> None:
        self._folder = _keyring_dir(settings)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self._folder is None:
            if not _LOCAL_LOCK.acquire(blocking=False):
                raise self._busy()
            return
        self._folder.mkdir(parents=True, exist_ok=True)
        handle = (self._folder / f"{KEY_FILE}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise self._busy() from None
        self._file = handle

    def release(self) -> None:
        if self._folder is None:
            _LOCAL_LOCK.release()
        elif self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @staticmethod
    def _busy() -> Conflict:
        return Conflict(
            "a key rotation is already running for this data directory",
            hint="follow it at GET /v1/privacy/jobs/{job_id}; run another when it has finished",
        )


def _worker(p: Personify) -> RemoteEventStore | None:
    """A connection of its own to the processing worker (under ``serve``), else None."""
    from personify.profiles.worker import RemoteEventStore

    events = p.stores.events
    return events.channel() if isinstance(events, RemoteEventStore) else None


def rotate(
    p: Personify,
    *,
    new_key: bool = True,
    retire: bool = False,
    on_progress: Report | None = None,
) -> dict[str, Any]:
    """Rotate the keyring and seal every stored value again; returns a summary of counts:
    ``{"key", "examined": {store: n}, "resealed": {store: n}, "retired"?}``.

    ``new_key=False`` only finishes an earlier rotation (seals again what still names an
    old key). ``on_progress(summary, store_done)`` is told the running summary after each
    batch of a pass run in this process and after each store. :func:`run_rotation` runs it
    as a job, one at a time per data directory.
    """
    check_settings(p.settings)
    folder = _keyring_dir(p.settings)
    here = Resealer(p)
    worker = _worker(p)
    if worker is not None and folder is None:
        raise InvalidInput(
            "under `personify serve` rotation needs PERSONIFY_STATE_BACKEND=sqlite",
            hint="the worker and the API process share the keyring file in the data dir",
        )
    try:
        ring = _next_ring(p, folder, new_key)
        if worker is not None:
            # Every process must open values sealed with the new key before any process
            # seals with it: this one learns the key first, the worker switches to it,
            # then this one does.
            before = here.current()
            if before is not None and before in ring.keys:
                here.use(Keyring(ring.keys, before))
            worker.call("privacy_reload_keys")
        here.use(ring)
        summary: dict[str, Any] = {"key": ring.current, "examined": {}, "resealed": {}}
        _passes(p, here, worker, summary, "", on_progress)
        if retire:
            summary["check"] = {"examined": {}, "resealed": {}}
            nested = None if on_progress is None else _nested(summary, on_progress)
            _passes(p, here, worker, summary["check"], "check ", nested)
            left = sum(summary["check"]["resealed"].values())
            if left:
                raise Conflict(
                    f"{left} values were sealed with an old key during the rotation (another "
                    "process still used it); they are sealed again now, the old keys are kept",
                    hint="stop other personify processes, then run the rotation again with "
                    "resume and retire",
                )
            summary["retired"] = len(ring.keys) - 1
            ring = retire_keys(folder) if folder is not None else ring.current_only()
            if worker is not None:
                worker.call("privacy_reload_keys")
            here.use(ring)
        return summary
    finally:
        if worker is not None:
            worker.close()


def _nested(summary: dict[str, Any], report: Report) -> Report:
    """Reports of the check pass, as part of the whole summary."""
    return lambda _check, done: report(summary, done)


def _next_ring(p: Personify, folder: Path | None, new_key: bool) -> Keyring:
    if folder is not None:
        return rotate_keyring(folder) if new_key else load_keyring(None, folder)
    found = ciphers(p.stores)
    if not found:
        raise Unavailable("no store of this engine is sealed")
    ring = found[0].ring
    return with_new_key(ring) if new_key else ring


def _passes(
    p: Personify,
    here: Resealer,
    worker: RemoteEventStore | None,
    summary: dict[str, Any],
    label: str,
    report: Report | None,
) -> None:
    def on_batch(store: str, examined: int, resealed: int) -> None:
        summary["examined"][store] = examined
        summary["resealed"][store] = resealed
        if report is not None:
            report(summary, False)

    for store in STORES:
        summary["running"] = label + store
        if worker is not None and store in WORKER_STORES:
            counts = worker.call("privacy_reseal", store)
        else:
            counts = here.reseal(store, on_batch=on_batch)
        summary["examined"][store] = int(counts["examined"])
        summary["resealed"][store] = int(counts["resealed"])
        if report is not None:
            report(summary, True)
    del summary["running"]
    folder = _keyring_dir(p.settings)
    if folder is None:
        return
    # Old ciphertexts leave the SQLite files. The log and quarantine swaps zero what they
    # replace (secure_delete), so emptying the WAL is enough there, and ingestion is never
    # held up by a VACUUM of the log; profile documents are rewritten without it.
    for store in ("log", "quarantine"):
        if summary["resealed"].get(store):
            _checkpoint(folder / _FILES[store])
    if summary["resealed"].get("profiles") and p.settings.privacy.vacuum_after_erase:
        scrub(folder / _FILES["profiles"])


def _checkpoint(path: Path) -> None:
    """Copy the WAL into the file and empty it (old page images go with it)."""
    con = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def run_rotation(
    p: Personify,
    actor: str,
    *,
    resume: bool = False,
    retire: bool = False,
    background: bool = False,
    on_progress: Report | None = None,
) -> dict[str, Any]:
    """Rotate as a tracked privacy job with an audit record; returns the job.

    With ``background`` the job runs in a thread and is returned while ``running``
    (``GET /v1/privacy/jobs/{job_id}`` follows it, with the counts so far); otherwise it is
    returned finished, and a failure is raised after it was recorded.
    """
    check_settings(p.settings)
    if p.privacy is None:
        raise Unavailable("privacy services are not wired", hint="build the engine with build()")
    privacy = p.privacy
    exclusive = _Exclusive(p.settings)
    exclusive.acquire()
    try:
        job_id = privacy.jobs.start("rotate", KEY_FILE)
    except BaseException:
        exclusive.release()
        raise
    last = [0.0]
    latest: dict[str, Any] = {}

    def report(summary: dict[str, Any], store_done: bool) -> None:
        latest.update(summary)
        if on_progress is not None:
            on_progress(summary, store_done)
        if store_done or time.monotonic() - last[0] > _REPORT_EVERY_S:
            privacy.jobs.progress(job_id, summary)
            last[0] = time.monotonic()

    def work() -> None:
        try:
            summary = rotate(p, new_key=not resume, retire=retire, on_progress=report)
        except Exception as exc:
            message = exc.message if isinstance(exc, PersonifyError) else repr(exc)
            if background:
                log.exception("key rotation failed")
            privacy.jobs.finish(job_id, latest, error=message)  # what was done before
            privacy.audit.record(actor, "privacy.rotate.failed", KEY_FILE, {"job_id": job_id})
            if not background:
                raise
        else:
            privacy.jobs.finish(job_id, summary)
            details = {"job_id": job_id, "key": summary["key"], **summary["resealed"]}
            if "retired" in summary:
                details["retired"] = summary["retired"]
            privacy.audit.record(actor, "privacy.rotate", KEY_FILE, details)
        finally:
            exclusive.release()

    if background:
        threading.Thread(target=work, name="privacy-rotate", daemon=True).start()
    else:
        work()
    return privacy.jobs.get(job_id)
