"""The progress store in one SQLite file (the default): WAL, every commit synced, checked and migrated on open.

WAL lets the app's threads read while one writes; ``synchronous = FULL`` syncs every commit, so an answer the
student was told is saved survives a killed server and a power cut (about a millisecond per answer on a local
disk). A file that is not a progress store (another file, a damaged one) or one written by a newer version is
refused with a message, and never written to.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from tutor.progress.store import NotSavedError, ProgressError, SQLStore, Tx

_HEADER = b"SQLite format 3\x00"
_PATH_LOCKS: dict[Path, threading.Lock] = {}  # one per database file: this process's transactions take turns
_PATH_LOCKS_LOCK = threading.Lock()


class SQLiteStore(SQLStore):
    """The store in the SQLite file ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | Path, *, max_pages: int | None = None) -> None:
        """Open (create, check, migrate) the store at ``path``.

        Args:
            path: the database file.
            max_pages: a cap on the file's size in pages, past which a write fails as on a full disk (SQLite's
                ``max_page_count``; tests fill the "disk" with it). None: no cap.
        """
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.max_pages = max_pages
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        self._check_file()
        with self.transaction() as tx:
            if tx.one("PRAGMA quick_check")[0] != "ok":
                raise self._corrupt("its integrity check failed")
            has_meta = tx.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
            tables = tx.one("SELECT count(*) FROM sqlite_master WHERE type = 'table'")[0]
            if not has_meta and tables:
                raise self._corrupt("it holds tables of something else")
            row = tx.one("SELECT value FROM meta WHERE key = 'schema_version'") if has_meta else None
            self.migrate(tx, int(row[0]) if row else 0)

    def _check_file(self) -> None:
        if self.path.is_dir():
            raise ProgressError(f"{self.path} is a folder: TA_DATA_DIR must name a folder to hold progress.db")
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                if f.read(len(_HEADER)) != _HEADER:
                    raise self._corrupt("it is not an SQLite database")

    def _corrupt(self, why: str) -> ProgressError:
        return ProgressError(
            f"{self.path} is not a readable progress store ({why}); it was left untouched. Restore it from a "
            "backup, or move it away to start an empty one."
        )

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, kept open.

        Closing the last connection to a WAL file checkpoints it with a full sync: about 30 ms a transaction here
        with a connection per transaction, against about 1 ms on a kept one.
        """
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ProgressError(f"{self.path}: cannot open the progress store ({exc})") from exc
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.max_pages is not None:
                conn.execute(f"PRAGMA max_page_count = {int(self.max_pages)}")
        except sqlite3.DatabaseError:
            conn.close()
            raise
        self._local.conn = conn
        with self._lock:
            self._open.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction: BEGIN IMMEDIATE, so writers queue instead of failing.

        The threads of one process take turns on a lock first: SQLite's own wait for a busy file sleeps in
        growing steps, which eight concurrent writers would spend most of their time in.
        """
        with self._lock_for_path():
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(conn.cursor(), "?")
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from exc

    def _lock_for_path(self) -> threading.Lock:
        with _PATH_LOCKS_LOCK:
            return _PATH_LOCKS.setdefault(self.path.resolve(), threading.Lock())

    def close(self) -> None:
        """Close every connection this store opened (the last one to close checkpoints the WAL)."""
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _error(self, exc: sqlite3.DatabaseError) -> ProgressError:
        code = getattr(exc, "sqlite_errorcode", -1) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL:
            return NotSavedError(f"not saved: the disk holding {self.path} is full ({exc}); free some space")
        if code == sqlite3.SQLITE_IOERR:
            return NotSavedError(f"not saved: {self.path} could not be written ({exc}); check its disk")
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return self._corrupt(str(exc))
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return NotSavedError(f"not saved: {self.path} cannot be written now ({exc})")
        return ProgressError(f"{self.path}: {exc}")
