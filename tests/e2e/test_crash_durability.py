"""SIGKILL mid-ingestion and mid-catch-up: no acknowledged message lost, none duplicated.

The issue's durability proof, end to end against a real ``personify serve`` subprocess:

1. four threads post 200-message ``track`` batches as fast as they can, and the server is
   SIGKILLed in the middle of that: some batches were acknowledged, some were cut off
   mid-request, some never left the client;
2. after every kill, while the server is down, its log file must already hold every
   acknowledged message (HTTP 200 means durable), each once, and nothing never sent;
3. it is restarted and SIGKILLed again, with the senders still going, while the processor is
   catching up on the backlog -- aiming at the moment between the processor's event-store
   commit and its profile commit -- until such a kill has landed (a few rounds at most);
4. it is restarted once more and every batch ever sent is re-delivered, acknowledged or not, as
   a retrying SDK would; all of it must be de-duplicated;
5. the event store must hold each sent message exactly once and every profile must have counted
   each of its messages exactly once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx2 as httpx
import pytest
from tests.e2e.conftest import WRITE_KEY, Server, free_port

pytestmark = pytest.mark.slow

SENDERS = 4
BATCH_SIZE = 200
USERS = 300
EVENT = "Order Completed"
MIN_ACKED_BATCHES = 24  # before the first kill
MIN_INGEST_SECONDS = 1.5  # before the first kill
MIN_CATCH_UP_CRASHES = 2
MAX_CATCH_UP_CRASHES = 4  # more rounds only until one kill hit the window between the writes
WINDOW_PATIENCE = 5.0  # seconds to wait for a processor commit to kill right after

Message = dict[str, Any]


@dataclass
class Sender:
    """One SDK-like client posting batches until told to stop or the server goes away."""

    url: str
    index: int
    seq: int = 0
    sent: list[list[Message]] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    acked_batches: int = 0
    failures: list[str] = field(default_factory=list)
    ended_by: str = ""

    def batch(self) -> list[Message]:
        seq, self.seq = self.seq, self.seq + 1
        return [
            {
                "type": "track",
                "messageId": f"crash-{self.index}-{seq:05d}-{i:03d}",
                "userId": f"crash-user-{(self.index * 7 + seq * BATCH_SIZE + i) % USERS:03d}",
                "event": EVENT,
                "properties": {"revenue": 1},
            }
            for i in range(BATCH_SIZE)
        ]

    def run(self, stop: threading.Event) -> None:
        self.ended_by = "stopped"
        auth = httpx.BasicAuth(WRITE_KEY, "")
        with httpx.Client(base_url=self.url, auth=auth, timeout=30.0) as client:
            while not stop.is_set():
                batch = self.batch()
                self.sent.append(batch)  # recorded before the request: it may be cut off
                try:
                    resp = client.post("/v1/batch", json={"batch": batch})
                except httpx.TransportError as exc:  # the server was killed
                    self.ended_by = type(exc).__name__
                    return
                if resp.status_code != 200:
                    self.failures.append(f"HTTP {resp.status_code}: {resp.text[:300]}")
                    self.ended_by = "http error"
                    return
                body = resp.json()
                if body.get("accepted") != BATCH_SIZE or body.get("quarantined"):
                    self.failures.append(f"unexpected batch result: {str(body)[:300]}")
                self.acked.extend(m["messageId"] for m in batch)
                self.acked_batches += 1


class Fleet:
    """The four senders, started for a round and joined after the kill."""

    def __init__(self, url: str) -> None:
        self.senders = [Sender(url, i) for i in range(SENDERS)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=s.run, args=(self._stop,), name=f"sender-{s.index}")
            for s in self.senders
        ]
        for t in self._threads:
            t.start()

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def join(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads)
        assert [f for s in self.senders for f in s.failures] == []

    @property
    def acked_batches(self) -> int:
        return sum(s.acked_batches for s in self.senders)

    @property
    def batches(self) -> list[list[Message]]:
        return [b for s in self.senders for b in s.sent]

    @property
    def sent(self) -> list[str]:
        return [m["messageId"] for b in self.batches for m in b]

    @property
    def acked(self) -> list[str]:
        return [i for s in self.senders for i in s.acked]


def _kill(server: Server) -> str:
    """SIGKILL the server and return what it wrote on stderr (closing the pipe)."""
    server.kill()
    proc = server.proc
    if proc is None or proc.stderr is None:
        return ""
    with proc.stderr:
        return proc.stderr.read().decode(errors="replace")


def _health(server: Server) -> dict[str, Any]:
    resp = httpx.get(f"{server.url}/health", timeout=10)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _logged_ids(data_dir: Path) -> list[str]:
    """The message ids in the durable log, read straight from its file while the server is down."""
    with closing(sqlite3.connect(data_dir / "log.sqlite", timeout=30)) as con:
        return [str(r[0]) for r in con.execute("SELECT message_id FROM log")]


def _checkpoints(data_dir: Path) -> tuple[int, int]:
    """The (event store, profile store) checkpoints on disk, read while the server is down."""
    with closing(sqlite3.connect(data_dir / "state.sqlite", timeout=30)) as con:
        row = con.execute("SELECT \"offset\" FROM checkpoints WHERE name = 'profiles'").fetchone()
    profiles = int(row[0]) if row else 0
    events = duckdb.connect(str(data_dir / "events.duckdb"))
    try:
        erow = events.execute("SELECT \"offset\" FROM checkpoints WHERE name = 'events'").fetchone()
    finally:
        events.close()
    return (int(erow[0]) if erow else 0), profiles


def _stored_event_ids(data_dir: Path) -> list[str]:
    events = duckdb.connect(str(data_dir / "events.duckdb"))
    try:
        return [str(r[0]) for r in events.execute("SELECT message_id FROM events").fetchall()]
    finally:
        events.close()


def _event_commits(data_dir: Path) -> tuple[int, int, int]:
    """A fingerprint of the event store's write-ahead log: it changes when the processor commits
    a step's event rows (DuckDB writes its WAL at commit; queries such as /health's count do
    not touch it)."""
    try:
        st = os.stat(data_dir / "events.duckdb.wal")
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _round(server: Server, fleet: Fleet, diary: list[str], *, first: bool) -> tuple[int, int]:
    """Ingest heavily, SIGKILL, check the log on disk; return the checkpoints left on disk.

    Each processor step commits its event rows first and its profile changes second. The kill
    is aimed between the two: the server is killed the moment the event store's WAL changes
    (the first commit of a step), unless that takes longer than the round's patience. The
    first round kills only after plenty of acknowledged traffic; later rounds right after the
    restart, while the processor is catching up on the backlog (the senders keep sending).
    """
    began = time.monotonic()
    if not first:
        server.start()
    started = time.monotonic() - began
    acked_before = fleet.acked_batches
    fleet.start()
    min_seconds, min_acked = (MIN_INGEST_SECONDS, MIN_ACKED_BATCHES) if first else (0.0, 0)
    while fleet.alive() and (
        time.monotonic() - began - started < min_seconds
        or fleet.acked_batches - acked_before < min_acked
    ):
        if time.monotonic() - began > 30:
            break
        time.sleep(0.02)
    health = _health(server)
    watch_from = time.monotonic()
    baseline = _event_commits(server.data_dir)
    while fleet.alive() and time.monotonic() - watch_from < WINDOW_PATIENCE:
        if _event_commits(server.data_dir) != baseline:
            break
        time.sleep(0.0005)
    stderr = _kill(server)  # the senders are still sending
    waited = time.monotonic() - watch_from
    fleet.join()
    assert "Traceback" not in stderr, stderr
    ingested = time.monotonic() - began - started

    sent, acked = fleet.sent, fleet.acked
    assert len(set(sent)) == len(sent), "the test itself must send unique ids"
    assert fleet.acked_batches - acked_before >= min_acked, (
        f"only {fleet.acked_batches - acked_before} batches acknowledged in {ingested:.1f}s"
    )
    logged = _logged_ids(server.data_dir)
    assert len(logged) == len(set(logged)), "the log holds a message twice"
    missing = set(acked) - set(logged)
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:5]}"
    assert set(logged) <= set(sent)
    ecp, pcp = _checkpoints(server.data_dir)
    diary.append(
        f"{'ingestion' if first else 'catch-up'} kill: start {started:.2f}s, ingest "
        f"{ingested:.2f}s (watched the event store {waited:.2f}s), "
        f"{fleet.acked_batches - acked_before} batches acked; health before the watch: "
        f"log_head={health['log_head']} processed_up_to={health['processed_up_to']} "
        f"lag={health['lag']}; on disk: log={len(logged)}, sent={len(sent)}, "
        f"acked={len(acked)}, events checkpoint={ecp}, profiles checkpoint={pcp}"
    )
    return ecp, pcp


def _resend(server: Server, batches: list[list[Message]]) -> tuple[int, int]:
    """Re-deliver every batch; return (accepted, duplicates) as the server reported them."""
    accepted = duplicates = 0
    auth = httpx.BasicAuth(WRITE_KEY, "")
    with httpx.Client(base_url=server.url, auth=auth, timeout=30.0) as client:
        for batch in batches:
            resp = client.post("/v1/batch", json={"batch": batch})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert not body["quarantined"], body
            accepted += int(body["accepted"])
            duplicates += int(body["duplicates"])
    return accepted, duplicates


def _profile_counts(server: Server, users: list[str]) -> dict[str, tuple[int, int]]:
    """user id -> (event_counts[EVENT], orders) of its profile."""
    out: dict[str, tuple[int, int]] = {}
    with httpx.Client(base_url=server.url, headers=server.admin(), timeout=30) as client:
        for user in users:
            resp = client.get("/v1/profiles/lookup", params={"user_id": user})
            assert resp.status_code == 200, resp.text
            computed = resp.json()["computed"]
            out[user] = (int(computed["event_counts"].get(EVENT, 0)), int(computed["orders"]))
    return out


def test_sigkill_mid_ingestion_and_catch_up_loses_no_ack_duplicates_none(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port())
    fleet = Fleet(server.url)
    diary: list[str] = []
    try:
        server.start()
        previous = _round(server, fleet, diary, first=True)
        hits = int(previous[0] > previous[1])
        for n in range(MAX_CATCH_UP_CRASHES):
            ecp, pcp = _round(server, fleet, diary, first=False)
            hits += ecp > pcp and (ecp, pcp) != previous  # a new step split by the kill
            previous = (ecp, pcp)
            if n + 1 >= MIN_CATCH_UP_CRASHES and hits:
                break
        diary.append(f"kills that landed between the event and the profile commit: {hits}")

        sent = fleet.sent
        acked = set(fleet.acked)
        logged = set(_logged_ids(server.data_dir))
        server.start()
        restarted = _health(server)
        assert int(restarted["log_head"]) >= len(acked), restarted
        assert int(restarted["log_head"]) >= len(logged), restarted

        # Re-deliver every batch ever sent, acknowledged or not, as a retrying SDK would.
        accepted, duplicates = _resend(server, fleet.batches)
        assert (accepted, duplicates) == (len(sent) - len(logged), len(logged))

        health = server.wait_caught_up(timeout=60)
        diary.append(f"after re-delivery: {health}")
        assert health["processor_error"] is None, health
        assert health["events"] == len(sent), health

        # Every profile counted each of its messages exactly once.
        expected = Counter(m["userId"] for b in fleet.batches for m in b)
        assert health["profiles"] == len(expected), health
        counts = _profile_counts(server, sorted(expected))
        wrong = {u: (*counts[u], n) for u, n in expected.items() if counts[u] != (n, n)}
        assert not wrong, (
            f"(event count, orders, messages sent) differ for {len(wrong)} profiles, e.g. "
            f"{dict(sorted(wrong.items())[:5])}"
        )
        assert sum(c for c, _ in counts.values()) == sum(o for _, o in counts.values()) == len(sent)

        server.stop()
        stored = _stored_event_ids(server.data_dir)
        assert len(stored) == len(set(stored)), "the event store holds a message twice"
        assert set(stored) == set(sent)
    finally:
        server.stop()
        print("\n".join(diary))
