"""What the page and ``ta review`` do with a student's progress: record answers, review due cards, find weak spots.

    >>> progress = Progress(open_store())                  # clock: a test clock in tests
    >>> progress.answer("ada", session, 0, "B")            # Answered(feedback, saved=True, problem=None)
    >>> progress.due("ada")                                # the cards due now, soonest first
    >>> progress.review("ada", card.question_key, "C")     # the same feedback as the quiz, and the card rescheduled
    >>> progress.weakest("ada")                            # ("Regularization", "course"): the next quiz's topic

Every read names the student whose data it returns and the viewer asking: :meth:`Progress.allowed` lets a
student read only their own, a teacher anyone's. A question's topic is its lesson (the first heading of the
passage it was built from), or the quiz's topic for a question written without a source.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from quizgen.grade import Feedback, QuizSession
from quizgen.schema import Quiz, QuizItem
from tutor.progress import cards
from tutor.progress.mastery import Mastery, mastery, objective_term
from tutor.progress.store import AccessError, Attempt, CardRecord, NotSavedError, ProgressError, Store, User


def utcnow() -> datetime:
    """The wall clock, in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Answered:
    """The feedback on an answer, and whether it was stored."""

    feedback: Feedback
    saved: bool
    problem: str | None = None  # why it was not saved


def question_key(item: QuizItem) -> str:
    """The card's identity: the question as the student sees it (stem, options, key), hashed."""
    q = item.question
    text = json.dumps([" ".join(q.stem.split()), q.options, q.answer])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def topic_of(item: QuizItem, quiz_topic: str) -> str:
    """The lesson a question comes from (its source's first heading, else its document), or the quiz's topic."""
    source = item.question.source
    if source is None:
        return quiz_topic.strip() or "(no topic)"
    return source.headings[0] if source.headings else source.doc.rsplit(".", 1)[0]


def card_session(card: CardRecord) -> QuizSession:
    """A one-question session for a card: graded, and shown, exactly as in the quiz."""
    item = QuizItem.model_validate_json(card.question)
    return QuizSession(Quiz(topic=card.topic, questions=[item]))


class Progress:
    """A student's answers, cards and mastery over a :class:`~tutor.progress.store.Store`."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        """Use ``store``; ``clock`` says what time it is (a test clock in tests)."""
        self.store = store
        self.clock = clock
        self._quizzes: weakref.WeakKeyDictionary[QuizSession, int] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    # ---- who may read what

    def user(self, name: str | None) -> User:
        """The account ``name`` (a logged-in user); a ProgressError when there is none."""
        user = self.store.user(name) if name else None
        if user is None:
            raise ProgressError("log in first: progress is kept per account")
        return user

    def allowed(self, viewer: str | None, student: str | None) -> str:
        """The student whose data ``viewer`` may read: themself (``student`` empty or theirs), or anyone for a teacher.

        Raises:
            AccessError: a student asking for someone else's data.
        """
        user = self.user(viewer)
        wanted = (student or "").strip() or user.name
        if wanted != user.name and not user.teacher:
            raise AccessError("you can see only your own progress")
        if wanted != user.name and self.store.user(wanted) is None:
            raise ProgressError(f"no student named {wanted!r}")
        return wanted

    # ---- answering

    def answer(self, student: str, session: QuizSession, index: int, letter: str) -> Answered:
        """Grade ``letter`` for question ``index`` of ``session`` and store it (with its quiz, once, and its card)."""
        feedback = session.answer(index, letter)  # an InputError for a bad index or letter, before anything is stored
        item = session.quiz.questions[index]
        try:
            quiz_id = self._quiz_id(student, session)
            self._store(student, quiz_id, item, session.quiz.topic, feedback)
        except NotSavedError as exc:
            return Answered(feedback, False, str(exc))
        return Answered(feedback, True)

    def _quiz_id(self, student: str, session: QuizSession) -> int:
        with self._lock:  # two answers at once to a new quiz record it once
            if session not in self._quizzes:
                kb = session.quiz.metadata.extra.get("kb") if session.quiz.metadata else None
                self._quizzes[session] = self.store.add_quiz(student, session.quiz.topic, kb, self.clock())
            return self._quizzes[session]

    def _store(self, student: str, quiz_id: int | None, item: QuizItem, quiz_topic: str, fb: Feedback) -> None:
        source = item.question.source
        attempt = Attempt(
            student=student,
            quiz_id=quiz_id,
            question_key=question_key(item),
            question=item.model_dump_json(),
            topic=topic_of(item, quiz_topic),
            objective=item.question.objective,
            kb=source.kb if source else None,
            letter=fb.chosen,
            correct=fb.correct,
            answered=self.clock(),
        )
        self.store.record(attempt, cards.schedule)

    # ---- reviewing

    def due(self, student: str) -> list[CardRecord]:
        """The student's cards due now, soonest first."""
        return self.store.cards(student, due_by=self.clock())

    def review(self, student: str, key: str, letter: str) -> tuple[QuizSession, Answered]:
        """Answer the student's card ``key``: the one-question session (for the feedback) and what was stored."""
        card = next((c for c in self.store.cards(student) if c.question_key == key), None)
        if card is None:
            raise ProgressError("that card is not yours or no longer exists: open the Review tab again")
        session = card_session(card)
        feedback = session.answer(0, letter)
        try:
            self._store(student, None, session.quiz.questions[0], card.topic, feedback)
        except NotSavedError as exc:
            return session, Answered(feedback, False, str(exc))
        return session, Answered(feedback, True)

    # ---- mastery

    def mastery(self, student: str, by: str = "topic") -> list[Mastery]:
        """The student's mastery per ``topic`` or ``objective``, weakest first."""
        if by not in ("topic", "objective"):
            raise ValueError(f"mastery is per 'topic' or 'objective', not {by!r}")
        return mastery(self.store.attempts(student), lambda a: getattr(a, by))

    def weakest(self, student: str) -> tuple[str, str | None] | None:
        """What to practise next, as a quiz topic, and the knowledge base it came from; None: no answers yet.

        The least mastered learning objective (ties: the one in the least mastered topic, then the latest
        answered). A grounded objective names its course term ("Recall what dropout is"): the term is the topic,
        so the grounded writer starts from the term's definition and asks about it and its neighbours. Otherwise
        the objective's topic (its lesson, or the quiz's topic).
        """
        attempts = self.store.attempts(student)
        if not attempts:
            return None
        by_topic = {m.name: m.value for m in mastery(attempts)}
        latest = {a.objective: a for a in attempts}  # oldest first: the last answer per objective wins
        ranked = sorted(
            mastery(attempts, lambda a: a.objective),
            key=lambda m: (m.value, by_topic[latest[m.name].topic], -latest[m.name].answered.timestamp()),
        )
        last = latest[ranked[0].name]
        return objective_term(last.objective) or last.topic, last.kb

    def summary(self, student: str) -> dict[str, Any]:
        """Everything stored about one student, as JSON-ready data: mastery, quizzes, answers, cards."""
        now = self.clock()
        return {
            "student": student,
            "topics": [m.__dict__ for m in self.mastery(student)],
            "objectives": [m.__dict__ for m in self.mastery(student, "objective")],
            "quizzes": [{"id": q.id, "topic": q.topic, "kb": q.kb, "created": q.created.isoformat()}
                        for q in self.store.quizzes(student)],
            "answers": [_answer_row(a) for a in self.store.attempts(student)],
            "cards": [{"question": json.loads(c.question)["question"]["stem"], "topic": c.topic,
                       "due": c.due.isoformat(), "due_now": c.due <= now, "reviews": c.reviews}
                      for c in self.store.cards(student)],
        }  # fmt: skip

    def class_mastery(self) -> list[tuple[str, Mastery]]:
        """(student, mastery of a topic) for every student and topic answered, by student then topic."""
        by_student: dict[str, list[Attempt]] = {}
        for a in self.store.attempts(None):
            by_student.setdefault(a.student, []).append(a)
        return [
            (student, m)
            for student in sorted(by_student)
            for m in sorted(mastery(by_student[student]), key=lambda m: m.name)
        ]

    def class_csv(self) -> str:
        """The class's mastery as CSV: student, topic, mastery (0-1), answers, correct."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["student", "topic", "mastery", "answers", "correct"])
        for student, m in self.class_mastery():
            writer.writerow([student, m.name, f"{m.value:.3f}", m.answers, m.correct])
        return out.getvalue()


def _answer_row(a: Attempt) -> dict[str, Any]:
    item = json.loads(a.question)
    return {
        "quiz": a.quiz_id,
        "question": item["question"]["stem"],
        "source": item["question"].get("source"),
        "letter": a.letter,
        "correct": a.correct,
        "topic": a.topic,
        "objective": a.objective,
        "answered": a.answered.isoformat(),
    }


def for_serving(url: str | None = None) -> Progress | None:
    """The progress of a server with accounts; None when there is no user (the anonymous page stores nothing).

    A missing SQLite file is not created here: ``ta serve`` without ``ta users add`` writes nothing.
    """
    import os
    import sys

    from tutor.progress.store import default_path, open_store

    url = url or os.environ.get("TA_DATABASE_URL") or None
    if url is None and not default_path().exists():
        users = []
    else:
        store = open_store(url)
        users = store.users()
    if not users:
        print("ta serve: no accounts: the page is anonymous and stores nothing (`ta users add NAME`)", file=sys.stderr)
        return None
    teachers = sum(u.teacher for u in users)
    said = f"{len(users)} account{'s' if len(users) != 1 else ''} ({teachers} teacher{'s' if teachers != 1 else ''})"
    print(f"ta serve: {said} in {store.location}: the page asks to log in", file=sys.stderr)
    return Progress(store)
