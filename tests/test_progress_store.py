"""The progress store on SQLite and on a real PostgreSQL server: the same tests, a test clock, real files."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from progress_fixtures import postgres_url, schema_url  # noqa: F401 - a fixture

from tutor.progress import cards
from tutor.progress.sqlite import SQLiteStore
from tutor.progress.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Attempt,
    NotSavedError,
    ProgressError,
    open_store,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    """Where a fresh store lives: an SQLite file, or a schema of its own on the test PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "progress.db")
    return schema_url(request.getfixturevalue("postgres_url"))


def attempt(student="ada", key="q1", correct=True, when=T0, quiz=None, topic="Regularization") -> Attempt:
    return Attempt(student, quiz, key, '{"q": 1}', topic, "Define dropout", "course", "B", correct, when)


def test_users_quizzes_answers_and_cards_round_trip(url):
    store = open_store(url)
    store.add_user("ada", "hash-a", False, T0)
    store.add_user("tess", "hash-t", True, T0)
    with pytest.raises(ProgressError, match="already a user named 'ada'"):
        store.add_user("ada", "other", False, T0)
    store.set_password("ada", "hash-a2")
    users = [(u.name, u.teacher, u.password) for u in store.users()]
    assert users == [("ada", False, "hash-a2"), ("tess", True, "hash-t")]
    assert store.user("nobody") is None

    quiz = store.add_quiz("ada", "dropout", "course", T0)
    first = store.record(attempt(quiz=quiz, correct=True), cards.schedule)
    second = store.record(attempt(quiz=quiz, key="q2", correct=False, when=T0 + timedelta(seconds=5)), cards.schedule)
    assert second > first
    assert [(a.question_key, a.correct, a.answered, a.quiz_id) for a in store.attempts("ada")] == [
        ("q1", True, T0, quiz),
        ("q2", False, T0 + timedelta(seconds=5), quiz),
    ]
    assert [(q.id, q.topic, q.kb) for q in store.quizzes("ada")] == [(quiz, "dropout", "course")]
    # right = Good: due after FSRS's second learning step (10 min); wrong = Again: after the first (1 min)
    due = {c.question_key: c.due for c in store.cards("ada")}
    assert due == {"q1": T0 + timedelta(minutes=10), "q2": T0 + timedelta(seconds=5, minutes=1)}
    assert [c.question_key for c in store.cards("ada", due_by=T0 + timedelta(minutes=2))] == ["q2"]
    assert store.cards("tess") == [] and store.attempts("tess") == [] and store.quizzes("tess") == []

    # the same question again reschedules the one card
    store.record(attempt(key="q2", correct=True, when=T0 + timedelta(minutes=2)), cards.schedule)
    (card,) = [c for c in store.cards("ada") if c.question_key == "q2"]
    assert card.reviews == 2 and card.due > T0 + timedelta(minutes=2)
    assert len(store.attempts(None)) == 3
    store.close()
    assert len(open_store(url).attempts("ada")) == 3, "a reopened store holds what was committed"


def test_eight_clients_answering_25_questions_each_store_exactly_200(url):
    store = open_store(url)
    for i in range(8):
        store.add_user(f"s{i}", "h", False, T0)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        mine = open_store(url) if i % 2 else store  # half share one store object, half open their own
        try:
            quiz = mine.add_quiz(f"s{i}", "topic", None, T0)
            for n in range(25):
                when = T0 + timedelta(seconds=n)
                mine.record(attempt(f"s{i}", f"q{n % 5}", n % 3 != 0, when, quiz), cards.schedule)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(store.attempts(None)) == 200
    assert all(len(store.attempts(f"s{i}")) == 25 for i in range(8))
    assert all(sum(c.reviews for c in store.cards(f"s{i}")) == 25 for i in range(8)), "every answer moved its card"


WRITER = """
import sys
from datetime import datetime, timedelta, timezone
from tutor.progress import cards
from tutor.progress.store import Attempt, open_store
store = open_store(sys.argv[1])
start = int(sys.argv[2])
t0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
for n in range(start, start + 1000):
    a = Attempt("ada", None, f"q{n % 7}", "{}", "T", "O", None, "A", n % 2 == 0, t0 + timedelta(seconds=n))
    print(store.record(a, cards.schedule), flush=True)   # printed only once committed: "saved"
"""


def test_a_writer_killed_with_sigkill_loses_no_answer_it_confirmed_and_a_restart_resumes(url):
    open_store(url).add_user("ada", "h", False, T0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run_until(start: int, confirmations: int) -> list[int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(start)], stdout=subprocess.PIPE, text=True, env=env
        )
        ids = [int(proc.stdout.readline()) for _ in range(confirmations)]
        proc.send_signal(signal.SIGKILL)  # in the middle of the next answers: no clean shutdown at all
        proc.wait(timeout=30)
        return ids

    confirmed = run_until(0, 40)
    stored = {int(a.answered.timestamp() - T0.timestamp()) for a in open_store(url).attempts("ada")}
    assert len(stored) >= 40 and set(range(40)) <= stored, "every confirmed answer is in the store"
    resumed = run_until(len(stored), 20)  # a restarted writer carries on in the same store
    after = open_store(url).attempts("ada")
    assert len(after) >= len(stored) + 20 and len(set(confirmed + resumed)) == len(confirmed) + len(resumed)


def _v1(url: str) -> None:
    """A store as version 1 of the schema left it, with one user."""
    store = open_store(url)  # then rebuilt at version 1 below
    with store.transaction() as tx:
        for table in ("attempts", "cards", "quizzes", "users", "meta"):
            tx.run(f"DROP TABLE {table}")
        for statement in MIGRATIONS[0]:
            tx.run(statement.replace("{id}", store.id_column))
        tx.run("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        tx.run("INSERT INTO users (name, teacher, password, created) VALUES ('ada', 0, 'h', '2026-01-01')")


def test_an_older_schema_is_migrated_on_open_and_keeps_its_data(url):
    _v1(url)
    store = open_store(url)
    with store.transaction() as tx:
        assert tx.one("SELECT value FROM meta WHERE key = 'schema_version'")[0] == str(SCHEMA_VERSION)
    assert [u.name for u in store.users()] == ["ada"]
    store.record(attempt(), cards.schedule)
    assert len(store.attempts("ada")) == 1


def test_a_newer_schema_is_refused_and_left_as_it_is(url):
    store = open_store(url)
    with store.transaction() as tx:
        tx.run("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    before = Path(url).read_bytes() if not url.startswith("postgresql") else None
    with pytest.raises(ProgressError, match=r"newer version of ml-tutor .*upgrade ml-tutor.*left as it is"):
        open_store(url)
    if before is not None:
        assert Path(url).read_bytes() == before
    else:
        with store.transaction() as tx:
            assert tx.one("SELECT value FROM meta WHERE key = 'schema_version'")[0] == str(SCHEMA_VERSION + 1)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"this is not a database at all\n" * 100, id="another-file"),
        pytest.param(lambda data: data[:100] + bytes(len(data) - 100), id="zeroed-pages"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    ],
)
def test_a_corrupt_file_is_a_clear_error_and_never_overwritten(tmp_path, damage):
    path = tmp_path / "progress.db"
    store = SQLiteStore(path)
    store.add_user("ada", "h", False, T0)
    for n in range(50):
        store.record(attempt(key=f"q{n}"), cards.schedule)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path.write_bytes(damage(path.read_bytes()))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ProgressError, match=r"not a readable progress store .*left untouched"):
        SQLiteStore(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_a_database_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(ProgressError, match="tables of something else"):
        SQLiteStore(path)


def test_a_full_disk_reports_the_answer_unsaved_and_keeps_the_store_consistent(tmp_path):
    path = tmp_path / "progress.db"
    SQLiteStore(path).add_user("ada", "h", False, T0)
    store = SQLiteStore(path, max_pages=40)  # SQLite's own size cap: a write past it fails as on a full disk
    saved = 0
    big = "x" * 3000
    with pytest.raises(NotSavedError, match=r"not saved: the disk holding .* is full"):
        for n in range(1000):
            store.record(dataclasses.replace(attempt(key=f"q{n}"), question=big), cards.schedule)
            saved += 1
    assert 0 < saved < 1000
    reopened = SQLiteStore(path)
    assert len(reopened.attempts("ada")) == saved, "the failed answer left nothing half-written"
    assert len(reopened.cards("ada")) == saved
