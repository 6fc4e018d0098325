"""Knowledge bases in one SQLite file: documents, passages, an FTS5 index (BM25, Porter stemming) and vectors.

``data_dir()/knowledge.db`` holds every knowledge base. It runs in WAL mode, so app threads read while one
writer adds; each call opens its own connection. One :meth:`KnowledgeBase.add` is one transaction: every file
is read, checked and embedded first, then written at once, so an error or an interrupt leaves the previous
index exactly as it was.

``course`` is the starter course shipped in ``tutor/course/``: indexed on first open and re-indexed whenever a
shipped file changes (or the ingestion code does).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutor.knowledge import ingest, vectors
from tutor.knowledge.errors import KnowledgeError
from tutor.knowledge.passages import Document
from tutor.knowledge.search import Hit, Passage, missing_terms, rank

COURSE = "course"
COURSE_DIR = Path(__file__).resolve().parent.parent / "course"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kb (
    id INTEGER PRIMARY KEY AUTOINCREMENT,    -- never reused: caches key on (file, id, generation)
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,   -- bumped by every write: readers' caches key on it
    embedder TEXT NOT NULL DEFAULT ''        -- the model that made the stored vectors ('' = none)
);
CREATE TABLE IF NOT EXISTS document (
    id INTEGER PRIMARY KEY,
    kb_id INTEGER NOT NULL REFERENCES kb(id),
    name TEXT NOT NULL,                      -- as the user gave it, relative: "dropout.md", "week1/notes.rst"
    title TEXT NOT NULL,
    source TEXT NOT NULL,                    -- the absolute path it was read from
    sha256 TEXT NOT NULL,
    version INTEGER NOT NULL,                -- ingest.INGEST_VERSION that extracted it
    text TEXT NOT NULL,                      -- the extracted plain text: passages are spans of it
    added REAL NOT NULL,
    UNIQUE (kb_id, name)
);
CREATE TABLE IF NOT EXISTS passage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,    -- never reused, so an old id cannot name a different passage
    kb_id INTEGER NOT NULL,
    doc_id INTEGER NOT NULL REFERENCES document(id),
    headings TEXT NOT NULL,                  -- JSON list, outermost first
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB                              -- float32, unit length; NULL without an embedder
);
CREATE INDEX IF NOT EXISTS passage_doc ON passage (doc_id);
CREATE INDEX IF NOT EXISTS passage_kb ON passage (kb_id);
CREATE VIRTUAL TABLE IF NOT EXISTS passage_fts USING fts5 (
    text, context, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


def data_dir() -> Path:
    """Where the knowledge base lives: ``TA_DATA_DIR``, else the platform's user data directory."""
    if os.environ.get("TA_DATA_DIR"):
        return Path(os.environ["TA_DATA_DIR"]).expanduser()
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".local" / "share" / "ml-tutor"
    return Path(platformdirs.user_data_dir("ml-tutor", appauthor=False))


def db_path() -> Path:
    """The one SQLite file that holds every knowledge base."""
    return data_dir() / "knowledge.db"


_ready: set[Path] = set()
_ready_lock = threading.Lock()


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A fresh connection (autocommit; transactions are explicit), closed on exit."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise KnowledgeError(
            f"{path}: cannot open the knowledge base file ({exc}): set TA_DATA_DIR to a writable folder"
        ) from exc
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        if path not in _ready:
            with _ready_lock:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                _ready.add(path)
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; rolled back on any exception, KeyboardInterrupt included."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _no_such(name: str) -> KnowledgeError:
    return KnowledgeError(
        f"no knowledge base named {name!r}: see `ta kb list`, or make it with `ta kb add {name} PATH`"
    )


@contextlib.contextmanager
def reading(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: every statement in it sees the same state of the file, whatever a writer commits."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def check_name(name: str) -> str:
    """The canonical (lower-case) knowledge base name; :class:`KnowledgeError` if it is not a valid one."""
    canonical = str(name).strip().lower()
    if not _NAME.fullmatch(canonical):
        raise KnowledgeError(
            f"bad knowledge base name {name!r}: use 1-40 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return canonical


@dataclass
class AddReport:
    """What one :meth:`KnowledgeBase.add` did, by document name."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unchanged since they were indexed
    removed: list[str] = field(default_factory=list)  # only when syncing the shipped course
    passages: int = 0  # passages written by this call


@dataclass
class _Snapshot:
    """One knowledge base's passages and vectors, as of one generation (searches read it, never the rows)."""

    kb_id: int
    generation: int
    passages: dict[int, Passage]
    ids: list[int]
    matrix: Any  # np.ndarray (n, dim) or None


_cache: dict[tuple[Path, int], _Snapshot] = {}
_cache_lock = threading.Lock()


class KnowledgeBase:
    """One named knowledge base in ``knowledge.db``: add files, search passages, list what it holds."""

    def __init__(self, name: str, *, path: Path | None = None) -> None:
        """Refer to an existing knowledge base; use :func:`open_kb` or :meth:`create` rather than this."""
        self.name = check_name(name)
        self.path = path or db_path()

    def __repr__(self) -> str:
        return f"KnowledgeBase({self.name!r}, path={str(self.path)!r})"

    # -- lifecycle -------------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, *, path: Path | None = None) -> KnowledgeBase:
        """Create an empty knowledge base; :class:`KnowledgeError` if the name is taken or reserved."""
        kb = cls(name, path=path)
        if kb.name == COURSE:
            raise KnowledgeError(
                f"{COURSE!r} is the shipped starter course: create your own, e.g. `ta kb add mynotes PATH`"
            )
        with connect(kb.path) as conn, transaction(conn):
            if conn.execute("SELECT 1 FROM kb WHERE name = ?", (kb.name,)).fetchone():
                raise KnowledgeError(f"knowledge base {kb.name!r} already exists: add files to it or remove it first")
            conn.execute("INSERT INTO kb (name, created) VALUES (?, ?)", (kb.name, time.time()))
        return kb

    @classmethod
    def names(cls, *, path: Path | None = None) -> list[str]:
        """Every knowledge base's name, the shipped course included, sorted."""
        with connect(path or db_path()) as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM kb")}
        if _course_files():
            names.add(COURSE)
        return sorted(names)

    def exists(self) -> bool:
        """Whether this knowledge base is in the file."""
        with connect(self.path) as conn:
            return conn.execute("SELECT 1 FROM kb WHERE name = ?", (self.name,)).fetchone() is not None

    def remove(self) -> None:
        """Drop the whole knowledge base (documents, passages, index entries) in one transaction."""
        if self.name == COURSE:
            raise KnowledgeError(f"{COURSE!r} is the shipped starter course and cannot be removed")
        with connect(self.path) as conn, transaction(conn):
            kb_id = self._id(conn)
            conn.execute("DELETE FROM passage_fts WHERE rowid IN (SELECT id FROM passage WHERE kb_id = ?)", (kb_id,))
            conn.execute("DELETE FROM passage WHERE kb_id = ?", (kb_id,))
            conn.execute("DELETE FROM document WHERE kb_id = ?", (kb_id,))
            conn.execute("DELETE FROM kb WHERE id = ?", (kb_id,))

    def _id(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT id FROM kb WHERE name = ?", (self.name,)).fetchone()
        if row is None:
            raise _no_such(self.name)
        return int(row[0])

    # -- writing ---------------------------------------------------------------------------------------------------

    def add(self, paths: Iterable[Path | str]) -> AddReport:
        """Index files and folders (md, rst, txt, pdf; folders recurse): changed files re-indexed, unchanged skipped.

        Every file is read and checked before anything is written, and the write is one transaction: any error,
        or an interrupt, leaves the knowledge base as it was. Raises :class:`KnowledgeError` naming the file.
        """
        if self.name == COURSE:
            raise KnowledgeError(
                f"{COURSE!r} is the shipped starter course: add your notes to a knowledge base of your own"
            )
        return self._add(ingest.collect(paths), prune=False)

    def _add(self, files: list[tuple[str, Path]], *, prune: bool) -> AddReport:
        with connect(self.path) as conn:
            self._id(conn)
            stored = self._stored(conn)
        report, docs = AddReport(), []
        for name, file in files:
            data = ingest.read_bytes(file)
            if stored.get(name) == (hashlib.sha256(data).hexdigest(), ingest.INGEST_VERSION):
                report.skipped.append(name)
                continue
            docs.append(ingest.read_document(name, file))
            (report.updated if name in stored else report.added).append(name)
        stale = sorted(set(stored) - {name for name, _ in files}) if prune else []
        if not docs and not stale:
            return report
        model = vectors.embedder()
        embeddings = [vectors.embed([c.text for c in doc.chunks]) if model else None for doc in docs]
        with connect(self.path) as conn, transaction(conn):
            kb_id = self._id(conn)
            for name in stale:
                _delete_document(conn, kb_id, name)
            for doc, matrix in zip(docs, embeddings, strict=True):
                _delete_document(conn, kb_id, doc.name)
                _insert_document(conn, kb_id, doc, matrix)
            conn.execute(
                "UPDATE kb SET generation = generation + 1, embedder = ? WHERE id = ?",
                (vectors.EMBEDDER if model else "", kb_id),
            )
        report.removed = stale
        report.passages = sum(len(doc.chunks) for doc in docs)
        return report

    def _stored(self, conn: sqlite3.Connection) -> dict[str, tuple[str, int]]:
        rows = conn.execute(
            "SELECT d.name, d.sha256, d.version FROM document d JOIN kb ON kb.id = d.kb_id WHERE kb.name = ?",
            (self.name,),
        )
        return {name: (sha, version) for name, sha, version in rows}

    # -- reading ---------------------------------------------------------------------------------------------------

    def documents(self) -> list[str]:
        """The names of the documents, sorted."""
        with connect(self.path) as conn:
            kb_id = self._id(conn)
            return [r[0] for r in conn.execute("SELECT name FROM document WHERE kb_id = ? ORDER BY name", (kb_id,))]

    def document_text(self, doc: str) -> str:
        """A document's extracted plain text (``text[p.start:p.end] == p.text`` for each of its passages)."""
        with connect(self.path) as conn:
            kb_id = self._id(conn)
            row = conn.execute("SELECT text FROM document WHERE kb_id = ? AND name = ?", (kb_id, doc)).fetchone()
        if row is None:
            raise KnowledgeError(f"knowledge base {self.name!r} has no document {doc!r}: see `ta kb list {self.name}`")
        return str(row[0])

    def passages(self) -> list[Passage]:
        """Every passage, in document order (documents by name, then by position)."""
        return list(self._snapshot().passages.values())

    def passage(self, passage_id: int) -> Passage:
        """One passage by id; :class:`KnowledgeError` if this knowledge base has none with that id."""
        found = self._snapshot().passages.get(passage_id)
        if found is None:
            raise KnowledgeError(f"knowledge base {self.name!r} has no passage {passage_id}: it was re-indexed")
        return found

    def stats(self) -> dict[str, Any]:
        """Counts for a listing: documents, passages, and whether vectors are stored."""
        with connect(self.path) as conn:
            kb_id = self._id(conn)
            docs = conn.execute("SELECT count(*) FROM document WHERE kb_id = ?", (kb_id,)).fetchone()[0]
            count = conn.execute("SELECT count(*) FROM passage WHERE kb_id = ?", (kb_id,)).fetchone()[0]
            embedder = conn.execute("SELECT embedder FROM kb WHERE id = ?", (kb_id,)).fetchone()[0]
        return {"name": self.name, "documents": docs, "passages": count, "vectors": bool(embedder)}

    def search(self, query: str, k: int = 5, *, mode: str | None = None) -> list[Hit]:
        """The ``k`` passages that best answer ``query``, best first; ``[]`` when no passage shares a word with it.

        ``mode`` overrides the ranking (``bm25``, ``hybrid``, ...; see :mod:`tutor.knowledge.search`). Hits only
        share words with the question; :meth:`missing_terms` tells whether the question asks about something
        the knowledge base never mentions.
        """
        query = _query(query)
        if isinstance(k, bool) or not isinstance(k, int):
            raise KnowledgeError(f"k is how many passages to return: a whole number, got {k!r}")
        if k <= 0:
            return []
        with connect(self.path) as conn, reading(conn):  # the passages and the index from one state of the file
            snapshot = self._snapshot(conn)
            k = min(k, max(len(snapshot.ids), 1))  # SQLite's LIMIT holds 64 bits; no search returns more hits anyway
            return rank(conn, snapshot.kb_id, snapshot.passages, snapshot.ids, snapshot.matrix, query, k, mode)

    def missing_terms(self, query: str) -> list[str]:
        """The query's content words (stop words left out) that no passage here contains, e.g. ``["word2vec"]``."""
        query = _query(query)
        with connect(self.path) as conn:
            return missing_terms(conn, self._id(conn), query)

    def _snapshot(self, conn: sqlite3.Connection | None = None) -> _Snapshot:
        if conn is None:
            with connect(self.path) as conn, reading(conn):
                return self._snapshot(conn)
        row = conn.execute("SELECT id, generation, embedder FROM kb WHERE name = ?", (self.name,)).fetchone()
        if row is None:
            self._id(conn)  # raises the standard error
        kb_id, generation, embedder = row
        key = (self.path, kb_id)
        snapshot = _cache.get(key)
        if snapshot is not None and snapshot.generation == generation:
            return snapshot
        snapshot = _load_snapshot(conn, kb_id, generation, embedder)
        with _cache_lock:
            _cache[key] = snapshot
        return snapshot


def _query(query: object) -> str:
    """A search query as text: lone surrogates (a JSON client's broken escapes) dropped; not text is an error."""
    if not isinstance(query, str):
        raise KnowledgeError(f"a search query is text, got {type(query).__name__}")
    return re.sub("[\ud800-\udfff]", "", query)


def _delete_document(conn: sqlite3.Connection, kb_id: int, name: str) -> None:
    row = conn.execute("SELECT id FROM document WHERE kb_id = ? AND name = ?", (kb_id, name)).fetchone()
    if row is None:
        return
    conn.execute("DELETE FROM passage_fts WHERE rowid IN (SELECT id FROM passage WHERE doc_id = ?)", (row[0],))
    conn.execute("DELETE FROM passage WHERE doc_id = ?", (row[0],))
    conn.execute("DELETE FROM document WHERE id = ?", (row[0],))


def _insert_document(conn: sqlite3.Connection, kb_id: int, doc: Document, matrix: Any) -> None:
    doc_id = conn.execute(
        "INSERT INTO document (kb_id, name, title, source, sha256, version, text, added) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (kb_id, doc.name, doc.title, doc.source, doc.sha256, ingest.INGEST_VERSION, doc.text, time.time()),
    ).lastrowid
    for i, chunk in enumerate(doc.chunks):
        blob = matrix[i].tobytes() if matrix is not None else None
        passage_id = conn.execute(
            'INSERT INTO passage (kb_id, doc_id, headings, start, "end", text, vector) VALUES (?, ?, ?, ?, ?, ?, ?)',
            (kb_id, doc_id, json.dumps(chunk.headings), chunk.start, chunk.end, chunk.text, blob),
        ).lastrowid
        context = " ".join(dict.fromkeys((doc.title, *chunk.headings)))
        conn.execute(
            "INSERT INTO passage_fts (rowid, text, context) VALUES (?, ?, ?)", (passage_id, chunk.text, context)
        )


def _load_snapshot(conn: sqlite3.Connection, kb_id: int, generation: int, embedder: str) -> _Snapshot:
    rows = conn.execute(
        'SELECT p.id, d.name, d.title, p.headings, p.start, p."end", p.text, p.vector FROM passage p '
        "JOIN document d ON d.id = p.doc_id WHERE p.kb_id = ? ORDER BY d.name, p.start",
        (kb_id,),
    ).fetchall()
    passages = {
        r[0]: Passage(id=r[0], doc=r[1], title=r[2], headings=tuple(json.loads(r[3])), start=r[4], end=r[5], text=r[6])
        for r in rows
    }
    matrix = None
    if rows and embedder == vectors.EMBEDDER and all(r[7] is not None for r in rows) and vectors.embedder():
        import numpy as np

        matrix = np.stack([np.frombuffer(r[7], dtype=np.float32) for r in rows])
    return _Snapshot(kb_id, generation, passages, [r[0] for r in rows], matrix)


# -- the shipped course ------------------------------------------------------------------------------------------

_course_synced: dict[Path, tuple] = {}


def _course_files() -> list[Path]:
    return sorted(p for p in COURSE_DIR.glob("*") if p.is_file() and p.suffix.lower() in ingest.SUPPORTED)


def _sync_course(path: Path) -> KnowledgeBase:
    """The course knowledge base, re-indexed if a shipped file was added, changed or removed since last time."""
    files = _course_files()
    if not files:
        raise KnowledgeError(f"the starter course is missing: no lesson files in {COURSE_DIR} (reinstall the package)")
    signature = (ingest.INGEST_VERSION, *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    kb = KnowledgeBase(COURSE, path=path)
    if _course_synced.get(path) == signature:
        return kb
    with connect(path) as conn, transaction(conn):
        if not conn.execute("SELECT 1 FROM kb WHERE name = ?", (COURSE,)).fetchone():
            conn.execute("INSERT INTO kb (name, created) VALUES (?, ?)", (COURSE, time.time()))
    kb._add([(p.name, p) for p in files], prune=True)
    _course_synced[path] = signature
    return kb


def open_kb(name: str, *, create: bool = False, path: Path | None = None) -> KnowledgeBase:
    """A knowledge base by name: ``course`` (the shipped starter course) or one the user made.

    Args:
        name: the knowledge base's name.
        create: create it (empty) if it does not exist, instead of raising.
        path: the SQLite file; default ``data_dir()/knowledge.db``.

    Raises:
        KnowledgeError: the name is invalid, or no such knowledge base exists (and ``create`` is false).
    """
    path = path or db_path()
    if check_name(name) == COURSE:
        return _sync_course(path)
    kb = KnowledgeBase(name, path=path)
    if not kb.exists():
        if not create:
            raise _no_such(kb.name)
        with contextlib.suppress(KnowledgeError):  # another thread may have created it meanwhile
            KnowledgeBase.create(kb.name, path=path)
    return kb
