"""Has anything been committed to these SQLite files since I last looked?

``PRAGMA data_version`` answers that for one connection: its value changes whenever another
connection, in this process or in any other, commits to the file. A cache in one process (the
decision path's profile views while processing runs in the worker process, or verified API
keys while ``personify keys revoke`` runs in a shell) can therefore ask a few microseconds per
file whether to drop what it holds, instead of reading again on every call or trusting a
timer. The watching connections only ever run this pragma: they never write, so they never
hide a change from themselves.

>>> import sqlite3, tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "x.sqlite"
>>> writer = sqlite3.connect(path, isolation_level=None)
>>> _ = writer.execute("CREATE TABLE t (x)")
>>> watch = FileWatch([path])
>>> before = watch.token()
>>> watch.token() == before
True
>>> _ = writer.execute("INSERT INTO t VALUES (1)")
>>> watch.token() == before
False
>>> watch.close(); writer.close()
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path


class FileWatch:
    """A token that changes whenever anything is committed to one of ``paths``.

    The files must exist (``FileNotFoundError`` otherwise): a watch never creates a database.
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"cannot watch missing SQLite files: {', '.join(missing)}")
        self.paths = tuple(paths)
        self._cons = [
            sqlite3.connect(
                f"{p.resolve().as_uri()}?mode=rw",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=30.0,
            )
            for p in self.paths
        ]
        self._cursors = [con.cursor() for con in self._cons]
        self._lock = threading.Lock()

    def token(self) -> tuple[int, ...]:
        """The files' data versions: equal tokens mean nobody committed in between."""
        with self._lock:
            return tuple(c.execute("PRAGMA data_version").fetchone()[0] for c in self._cursors)

    def close(self) -> None:
        with self._lock:
            for con in self._cons:  # a closed watch raises rather than answer "unchanged"
                con.close()
