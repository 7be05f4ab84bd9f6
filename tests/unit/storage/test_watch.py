"""FileWatch: its token changes exactly when someone commits to a watched SQLite file."""

from __future__ import annotations

import doctest
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from personify.storage.sqlite import watch as watch_module
from personify.storage.sqlite.watch import FileWatch


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "a.sqlite", tmp_path / "b.sqlite"]
    for path in paths:
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (x INTEGER)")
        con.close()
    return paths


def test_reads_and_idle_time_leave_the_token_alone(files: list[Path]) -> None:
    watch = FileWatch(files)
    before = watch.token()
    reader = sqlite3.connect(files[0], isolation_level=None)
    reader.execute("SELECT COUNT(*) FROM t").fetchall()
    assert watch.token() == before
    reader.close()
    watch.close()


def test_a_commit_through_another_connection_changes_the_token(files: list[Path]) -> None:
    watch = FileWatch(files)
    before = watch.token()
    writer = sqlite3.connect(files[1], isolation_level=None)
    writer.execute("INSERT INTO t VALUES (1)")
    after = watch.token()
    assert after != before
    assert after[0] == before[0]  # only the file written to moved
    writer.execute("BEGIN")
    writer.execute("INSERT INTO t VALUES (2)")
    writer.execute("ROLLBACK")
    assert watch.token() == after  # nothing was committed
    writer.close()
    watch.close()


def test_a_commit_by_another_process_changes_the_token(files: list[Path]) -> None:
    watch = FileWatch(files)
    before = watch.token()
    script = (
        "import sqlite3, sys; con = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "con.execute('INSERT INTO t VALUES (1)'); con.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(files[0])], check=True, timeout=60)
    assert watch.token() != before
    watch.close()


def test_a_missing_file_is_refused_and_never_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.sqlite"):
        FileWatch([tmp_path / "missing.sqlite"])
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_closed_watch_raises_instead_of_answering_unchanged(files: list[Path]) -> None:
    watch = FileWatch(files)
    watch.close()
    with pytest.raises(sqlite3.ProgrammingError):
        watch.token()


def test_the_module_example_runs() -> None:
    result = doctest.testmod(watch_module)
    assert result.attempted > 0 and result.failed == 0
