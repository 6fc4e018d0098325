"""The progress store in one SQLite file (the default): WAL, every commit synced, checked and migrated on open.

WAL lets the app's threads read while one writes; ``synchronous = FULL`` syncs every commit, so an answer the
student was told is saved survives a killed server and a power cut (about a millisecond per answer on a local
disk). A file that is not a progress store (another file, a damaged one) or one written by a newer version is
refused with a message, and never written to.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from tutor.progress.store import NotSavedError, ProgressError, SQLStore, Tx

_HEADER = b"SQLite format 3\x00"


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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction on a connection of its own: BEGIN IMMEDIATE, so writers queue instead of failing."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ProgressError(f"{self.path}: cannot open the progress store ({exc})") from exc
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.max_pages is not None:
                conn.execute(f"PRAGMA max_page_count = {int(self.max_pages)}")
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
        finally:
            conn.close()

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
