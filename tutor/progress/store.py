"""The progress store: one small repository interface over SQL, on SQLite (default) or PostgreSQL.

    >>> store = open_store()                       # data_dir()/progress.db, or TA_DATABASE_URL's PostgreSQL
    >>> store.add_user("ada", hash_password("..."), teacher=False)
    >>> quiz = store.add_quiz("ada", "dropout", "course", now)
    >>> store.record(Attempt("ada", quiz, key, item_json, "Regularization", "Define dropout", "course", "B", True,
    ...                      now), schedule)      # the answer and its card, in one transaction
    >>> store.cards("ada", due_by=now)             # the cards due now

:class:`Store` is the interface the app and ``ta`` use; :class:`SQLStore` writes it once in SQL that both
databases read (``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``, times as fixed-width ISO-8601 UTC
text, which sorts as it reads), and a subclass per database supplies connections and the few words that differ.
The schema is versioned: ``meta.schema_version`` names it, :data:`MIGRATIONS` brings an older store up to date
when it is opened, and a store written by a newer version is refused, never rewritten.

An answer is confirmed only once its transaction commits: :meth:`Store.record` returns after the commit (SQLite
with ``synchronous = FULL``), so a server killed right after it loses nothing it reported saved, and a write that
fails (a full disk) raises :class:`NotSavedError` instead of passing silently.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tutor.errors import TutorError

SCHEMA_VERSION = 2
# MIGRATIONS[v] takes a store from version v to v + 1. {id} is the dialect's auto-numbered primary key.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            teacher INTEGER NOT NULL DEFAULT 0,      -- 1: sees the whole class
            password TEXT NOT NULL,                  -- a salted scrypt hash, never the password
            created TEXT NOT NULL
        )""",
        """CREATE TABLE quizzes (
            id {id},
            student TEXT NOT NULL REFERENCES users (name),
            topic TEXT NOT NULL,
            kb TEXT,                                 -- the knowledge base it was written from; NULL: the model alone
            created TEXT NOT NULL
        )""",
        """CREATE TABLE attempts (
            id {id},
            student TEXT NOT NULL REFERENCES users (name),
            quiz_id BIGINT REFERENCES quizzes (id),  -- NULL: a review of a due card
            question_key TEXT NOT NULL,              -- the same question in two quizzes is one card
            question TEXT NOT NULL,                  -- the quizgen QuizItem as JSON: stem, options, key, its source
            topic TEXT NOT NULL,                     -- the lesson (the source's first heading) or the quiz's topic
            objective TEXT NOT NULL,
            kb TEXT,
            letter TEXT NOT NULL,
            correct INTEGER NOT NULL,
            answered TEXT NOT NULL
        )""",
        """CREATE TABLE cards (
            student TEXT NOT NULL REFERENCES users (name),
            question_key TEXT NOT NULL,
            question TEXT NOT NULL,
            topic TEXT NOT NULL,
            objective TEXT NOT NULL,
            kb TEXT,
            state TEXT NOT NULL,                     -- the fsrs Card as JSON
            due TEXT NOT NULL,
            reviews INTEGER NOT NULL,
            PRIMARY KEY (student, question_key)
        )""",
    ],
    [  # v2: the per-student reads (a student's answers, the cards due) stop scanning the class's rows
        "CREATE INDEX attempts_student ON attempts (student, answered)",
        "CREATE INDEX cards_due ON cards (student, due)",
    ],
]
assert len(MIGRATIONS) == SCHEMA_VERSION, "one migration per schema version"


class ProgressError(TutorError):
    """The progress store cannot be used as it is (a corrupt file, a newer schema, an unknown user); says what to do."""


class NotSavedError(ProgressError):
    """A write failed (a full disk, a lost connection): the answer was not stored, and the student must be told."""


class AccessError(ProgressError):
    """A student asked for another student's progress (only a teacher sees the class)."""


def timestamp(when: datetime) -> str:
    """``when`` as stored: fixed-width ISO-8601 in UTC, so text order is time order on both databases."""
    if when.tzinfo is None:
        raise ValueError(f"a progress time must carry its time zone, got {when!r}")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """The datetime a :func:`timestamp` stored."""
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class User:
    """An account: a student, or a teacher who sees the class."""

    name: str
    teacher: bool
    password: str  # the stored hash


@dataclass(frozen=True)
class Attempt:
    """One answered question."""

    student: str
    quiz_id: int | None  # None: a review of a due card
    question_key: str
    question: str  # the QuizItem as JSON, with its source
    topic: str
    objective: str
    kb: str | None
    letter: str
    correct: bool
    answered: datetime


@dataclass(frozen=True)
class QuizRecord:
    """A quiz a student took."""

    id: int
    student: str
    topic: str
    kb: str | None
    created: datetime


@dataclass(frozen=True)
class CardRecord:
    """A student's spaced-repetition card for one question."""

    student: str
    question_key: str
    question: str
    topic: str
    objective: str
    kb: str | None
    state: str  # fsrs Card JSON
    due: datetime
    reviews: int


# schedule(previous card state JSON or None, correct, when) -> (new state JSON, due)
Schedule = Callable[[str | None, bool, datetime], tuple[str, datetime]]


class Store(ABC):
    """The repository the app and ``ta`` use: users, quizzes, answers and cards."""

    location: str  # where it is, for messages: a file path or a URL without its password

    @abstractmethod
    def add_user(self, name: str, password: str, teacher: bool, when: datetime) -> None:
        """Create an account (``password``: the hash); a ProgressError when the name is taken."""

    @abstractmethod
    def set_password(self, name: str, password: str) -> None:
        """Replace an account's password hash; a ProgressError for an unknown name."""

    @abstractmethod
    def user(self, name: str) -> User | None:
        """The account named ``name``, or None."""

    @abstractmethod
    def users(self) -> list[User]:
        """Every account, by name."""

    @abstractmethod
    def add_quiz(self, student: str, topic: str, kb: str | None, when: datetime) -> int:
        """Record a quiz a student started answering; its id."""

    @abstractmethod
    def record(self, attempt: Attempt, schedule: Schedule) -> int:
        """Store ``attempt`` and reschedule its card in one transaction; the attempt's id once committed."""

    @abstractmethod
    def attempts(self, student: str | None = None) -> list[Attempt]:
        """A student's answers (None: the whole class), oldest first."""

    @abstractmethod
    def quizzes(self, student: str) -> list[QuizRecord]:
        """A student's quizzes, oldest first."""

    @abstractmethod
    def cards(self, student: str, due_by: datetime | None = None) -> list[CardRecord]:
        """A student's cards, soonest due first; ``due_by``: only those due by then."""

    def close(self) -> None:  # noqa: B027 - a store without connections to close does nothing
        """Release connections."""


class Tx:
    """A transaction's three verbs over a DB-API cursor: run, one, all (``?`` placeholders)."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self.cursor = cursor
        self.placeholder = placeholder

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute ``sql``; the cursor."""
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        self.cursor.execute(sql, tuple(params))
        return self.cursor

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row, or None."""
        return self.run(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row."""
        return list(self.run(sql, params).fetchall())


_ATTEMPT_COLUMNS = "student, quiz_id, question_key, question, topic, objective, kb, letter, correct, answered"
_CARD_COLUMNS = "student, question_key, question, topic, objective, kb, state, due, reviews"


class SQLStore(Store):
    """:class:`Store` in SQL both databases read; a subclass supplies :meth:`transaction` and the dialect."""

    placeholder = "?"
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
    lock_row = ""  # what a SELECT appends to lock the rows it reads until the commit ("FOR UPDATE")

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Tx]:
        """One transaction: committed when the block ends, rolled back on any exception."""

    # ---- the schema

    def migrate(self, tx: Tx, version: int) -> int:
        """Bring a store at ``version`` (0: empty) up to :data:`SCHEMA_VERSION`; refuse a newer one. The version."""
        if version > SCHEMA_VERSION:
            raise ProgressError(
                f"{self.location} was written by a newer version of ml-tutor (progress schema {version}; this one "
                f"reads up to {SCHEMA_VERSION}): upgrade ml-tutor, or point TA_DATA_DIR / TA_DATABASE_URL elsewhere. "
                "It was left as it is."
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                tx.run(statement.replace("{id}", self.id_column))
            tx.run(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(step + 1),),
            )
        return max(version, SCHEMA_VERSION)

    # ---- users

    def add_user(self, name: str, password: str, teacher: bool, when: datetime) -> None:
        """Create an account; a ProgressError when the name is taken."""
        with self.transaction() as tx:
            if tx.one("SELECT 1 FROM users WHERE name = ?", (name,)):
                raise ProgressError(f"there is already a user named {name!r}: `ta users passwd {name}` changes it")
            tx.run(
                "INSERT INTO users (name, teacher, password, created) VALUES (?, ?, ?, ?)",
                (name, int(teacher), password, timestamp(when)),
            )

    def set_password(self, name: str, password: str) -> None:
        """Replace an account's password hash."""
        with self.transaction() as tx:
            if tx.run("UPDATE users SET password = ? WHERE name = ?", (password, name)).rowcount != 1:
                raise ProgressError(f"no user named {name!r}: `ta users add {name}` creates one")

    def user(self, name: str) -> User | None:
        """The account named ``name``, or None."""
        with self.transaction() as tx:
            row = tx.one("SELECT name, teacher, password FROM users WHERE name = ?", (name,))
        return User(row[0], bool(row[1]), row[2]) if row else None

    def users(self) -> list[User]:
        """Every account, by name."""
        with self.transaction() as tx:
            rows = tx.all("SELECT name, teacher, password FROM users ORDER BY name")
        return [User(r[0], bool(r[1]), r[2]) for r in rows]

    # ---- quizzes and answers

    def add_quiz(self, student: str, topic: str, kb: str | None, when: datetime) -> int:
        """Record a quiz; its id."""
        with self.transaction() as tx:
            sql = "INSERT INTO quizzes (student, topic, kb, created) VALUES (?, ?, ?, ?) RETURNING id"
            return int(tx.one(sql, (student, topic, kb, timestamp(when)))[0])

    def record(self, attempt: Attempt, schedule: Schedule) -> int:
        """Store the answer and reschedule its card, in one transaction; the attempt's id once committed."""
        a = attempt
        with self.transaction() as tx:
            row = tx.one(
                "INSERT INTO attempts (" + _ATTEMPT_COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (a.student, a.quiz_id, a.question_key, a.question, a.topic, a.objective, a.kb, a.letter,
                 int(a.correct), timestamp(a.answered)),
            )  # fmt: skip
            card = tx.one(
                f"SELECT state, reviews FROM cards WHERE student = ? AND question_key = ? {self.lock_row}",
                (a.student, a.question_key),
            )
            state, due = schedule(card[0] if card else None, a.correct, a.answered)
            tx.run(
                "INSERT INTO cards (" + _CARD_COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (student, question_key) DO UPDATE SET state = excluded.state, due = excluded.due, "
                "reviews = excluded.reviews, question = excluded.question",
                (a.student, a.question_key, a.question, a.topic, a.objective, a.kb, state, timestamp(due),
                 (card[1] if card else 0) + 1),
            )  # fmt: skip
            return int(row[0])

    def attempts(self, student: str | None = None) -> list[Attempt]:
        """A student's answers (None: everyone's), oldest first."""
        where, params = ("WHERE student = ?", (student,)) if student is not None else ("", ())
        with self.transaction() as tx:
            rows = tx.all(f"SELECT {_ATTEMPT_COLUMNS} FROM attempts {where} ORDER BY answered, id", params)
        return [Attempt(*r[:8], bool(r[8]), parse_time(r[9])) for r in rows]

    def quizzes(self, student: str) -> list[QuizRecord]:
        """A student's quizzes, oldest first."""
        with self.transaction() as tx:
            rows = tx.all(
                "SELECT id, student, topic, kb, created FROM quizzes WHERE student = ? ORDER BY id", (student,)
            )
        return [QuizRecord(int(r[0]), r[1], r[2], r[3], parse_time(r[4])) for r in rows]

    def cards(self, student: str, due_by: datetime | None = None) -> list[CardRecord]:
        """A student's cards, soonest due first."""
        sql = f"SELECT {_CARD_COLUMNS} FROM cards WHERE student = ?"
        params: tuple[Any, ...] = (student,)
        if due_by is not None:
            sql, params = sql + " AND due <= ?", (student, timestamp(due_by))
        with self.transaction() as tx:
            rows = tx.all(sql + " ORDER BY due, question_key", params)
        return [CardRecord(*r[:7], parse_time(r[7]), int(r[8])) for r in rows]


def open_store(url: str | None = None) -> SQLStore:
    """The progress store, created and migrated when needed.

    Args:
        url: a ``postgresql://`` URL or an SQLite file path; None: ``TA_DATABASE_URL``, else
            ``data_dir()/progress.db``.
    """
    import os

    url = url or os.environ.get("TA_DATABASE_URL") or None
    if url and url.startswith(("postgresql://", "postgres://")):
        from tutor.progress.postgres import PostgresStore

        return PostgresStore(url)
    from tutor.progress.sqlite import SQLiteStore

    return SQLiteStore(url or default_path())


def default_path() -> Any:
    """``data_dir()/progress.db``: the knowledge base's data directory (``TA_DATA_DIR``, else the platform's)."""
    from tutor.knowledge import data_dir

    return data_dir() / "progress.db"
