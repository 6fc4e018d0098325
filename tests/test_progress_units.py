"""Pure parts of progress: mastery, FSRS mapping, password hashing, the slowed login, who may read what."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from progress_fixtures import scripted_question

from quizgen.grade import QuizSession
from quizgen.schema import Quiz
from tutor.progress import cards
from tutor.progress.accounts import BASE_DELAY, FREE_FAILURES, MAX_DELAY, Login, hash_password, verify_password
from tutor.progress.mastery import HALF_LIFE, mastery, objective_term, score
from tutor.progress.sqlite import SQLiteStore
from tutor.progress.store import AccessError, Attempt, ProgressError
from tutor.progress.tracker import Progress, question_key, topic_of

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_mastery_is_recency_weighted_accuracy_with_a_half_right_prior():
    assert score([]) == 0.5
    assert score([True]) == pytest.approx(0.75) and score([False]) == pytest.approx(0.25)
    # the answer HALF_LIFE answers back weighs half as much as the latest
    old_wrong = [False] + [True] * HALF_LIFE
    old_right = [True] + [False] * HALF_LIFE
    assert score(old_wrong) > 0.75 > 0.25 > score(old_right)
    assert score([False, True]) > score([True, False]), "the later answer counts more"

    def attempt(topic, correct, minute):
        return Attempt("ada", None, f"{topic}{minute}", "{}", topic, f"obj {topic}", None, "A", correct,
                       T0 + timedelta(minutes=minute))  # fmt: skip

    found = mastery([attempt("b", True, 1), attempt("a", False, 2), attempt("a", True, 3), attempt("b", True, 4)])
    assert [(m.name, m.answers, m.correct) for m in found] == [("a", 2, 1), ("b", 2, 2)], "weakest first"


def test_right_is_good_and_wrong_is_again_on_the_fsrs_scheduler():
    good, due_good = cards.schedule(None, True, T0)
    again, due_again = cards.schedule(None, False, T0)
    assert due_good - T0 == timedelta(minutes=10) and due_again - T0 == timedelta(minutes=1)
    # right again once due: the interval grows to days; wrong sends it back to a minute
    _, later = cards.schedule(good, True, due_good)
    assert later - due_good >= timedelta(days=1)
    _, relearn = cards.schedule(good, False, due_good)
    assert relearn - due_good <= timedelta(minutes=10)
    assert cards.retrievability(again, T0) == pytest.approx(1.0), "why mastery is not retrievability"


def test_a_password_is_a_salted_scrypt_hash():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsE", first)
    assert not verify_password("correct horse", "garbage") and not verify_password("x", "scrypt$1$2$3$%%$%%")


def test_the_login_is_generic_and_slows_down_after_repeated_failures(tmp_path):
    store = SQLiteStore(tmp_path / "p.db")
    store.add_user("ada", hash_password("correct horse"), False, T0)
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    login = Login(store, clock=lambda: now[0], sleep=sleep)

    def check(name, password):
        return asyncio.run(login.check(name, password))

    assert check("ada", "correct horse") and not check("nobody", "correct horse") and not check("ada", "wrong")
    assert not check("", "") and not check("ada; DROP TABLE users", "x")
    assert waits == []
    for _ in range(FREE_FAILURES + 3):  # the first FREE_FAILURES - 1 (one failure above) cost nothing, then doubling
        check("ada", "wrong")
    assert waits == [BASE_DELAY, 2 * BASE_DELAY, 4 * BASE_DELAY, 8 * BASE_DELAY][: len(waits)] and len(waits) == 4
    assert check("ada", "correct horse"), "the right password still works, after the wait"
    assert waits[-1] == 16 * BASE_DELAY and login.delay("ada") == 0, "a success clears the count"
    for _ in range(20):
        check("mallory", "guess")
    assert max(waits) == MAX_DELAY
    now[0] += 3600
    assert login.delay("mallory") == 0, "a quiet hour forgets the failures"


def test_a_student_reads_only_their_own_data_and_a_teacher_reads_everyones(tmp_path):
    store = SQLiteStore(tmp_path / "p.db")
    for name, teacher in (("ada", False), ("bob", False), ("tess", True)):
        store.add_user(name, "h", teacher, T0)
    progress = Progress(store, clock=lambda: T0)
    assert progress.allowed("ada", "") == "ada" and progress.allowed("ada", "ada") == "ada"
    with pytest.raises(AccessError, match="only your own"):
        progress.allowed("bob", "ada")
    assert progress.allowed("tess", "ada") == "ada"
    with pytest.raises(ProgressError, match="no student named 'zed'"):
        progress.allowed("tess", "zed")
    with pytest.raises(ProgressError, match="log in first"):
        progress.allowed(None, "ada")


def test_answers_become_cards_and_the_weakest_topic_is_the_next_quiz(tmp_path):
    store = SQLiteStore(tmp_path / "p.db")
    store.add_user("ada", "h", False, T0)
    progress = Progress(store, clock=lambda: T0)
    items = [scripted_question("dropout", 0, "Regularization"), scripted_question("sgd", 1, "Optimizers")]
    session = QuizSession(Quiz(topic="mixed", questions=items))
    assert topic_of(items[0], "mixed") == "Regularization" and question_key(items[0]) != question_key(items[1])
    progress.answer("ada", session, 0, "A")
    progress.answer("ada", session, 1, "C")
    assert progress.weakest("ada") == ("Optimizers", "course")
    assert len(store.quizzes("ada")) == 1, "one quiz, recorded at its first answer"
    assert progress.due("ada") == []
    later = Progress(store, clock=lambda: T0 + timedelta(minutes=2))
    assert [c.topic for c in later.due("ada")] == ["Optimizers"], "the wrong one is due after a minute"
    _, done = later.review("ada", later.due("ada")[0].question_key, "A")
    assert done.saved and done.feedback.correct and later.due("ada") == []
    with pytest.raises(ProgressError, match="not yours"):
        later.review("ada", "no-such-card", "A")


def test_weak_spots_come_from_the_weakest_objective_and_name_its_course_term(tmp_path):
    assert objective_term("Recall what dropout is") == "dropout"
    assert objective_term("Identify weight decay from its definition") == "weight decay"
    assert objective_term("Recall a fact about momentum") == "momentum"
    assert objective_term("Recognise the learning rate in context") == "the learning rate"
    assert objective_term("Explain the bias-variance tradeoff") is None  # the model's own writer: free text

    store = SQLiteStore(tmp_path / "p.db")
    store.add_user("ada", "h", False, T0)
    clock = [T0]
    progress = Progress(store, clock=lambda: clock[0])
    items = [
        scripted_question("dropout", 0, "Regularization", "Recall what dropout is"),
        scripted_question("weight decay", 1, "Regularization", "Identify weight decay from its definition"),
        scripted_question("momentum", 2, "Optimizers", "Recall a fact about momentum"),
    ]
    session = QuizSession(Quiz(topic="mixed", questions=items))
    for index, letter in enumerate("ABA"):  # weight decay wrong, the rest right
        clock[0] += timedelta(minutes=1)
        progress.answer("ada", session, index, letter)
    assert progress.weakest("ada") == ("weight decay", "course")
    for _ in range(3):  # weight decay mastered now; momentum answered wrong twice is the weakest
        clock[0] += timedelta(minutes=1)
        progress.answer("ada", QuizSession(Quiz(topic="t", questions=[items[1]])), 0, "A")
    for _ in range(2):
        clock[0] += timedelta(minutes=1)
        progress.answer("ada", QuizSession(Quiz(topic="t", questions=[items[2]])), 0, "C")
    assert progress.weakest("ada") == ("momentum", "course")


def test_serving_keeps_progress_only_once_an_account_exists(tmp_path, monkeypatch, capsys):
    from tutor.progress.tracker import for_serving

    monkeypatch.setenv("TA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TA_DATABASE_URL", raising=False)
    assert for_serving() is None and list(tmp_path.iterdir()) == []
    SQLiteStore(tmp_path / "progress.db")  # a store without accounts: still anonymous
    assert for_serving() is None
    assert "anonymous and stores nothing" in capsys.readouterr().err
    SQLiteStore(tmp_path / "progress.db").add_user("tess", "h", True, T0)
    progress = for_serving()
    assert progress is not None and progress.store.user("tess").teacher
    assert "1 account (1 teacher)" in capsys.readouterr().err
