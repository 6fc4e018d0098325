"""A quiz session: answer a question, get feedback, keep a running score. A new quiz gets a new session.

The session holds the only mutable state of taking a quiz, so state cannot leak from one quiz into the
next: build a new :class:`QuizSession` for each quiz (or call :meth:`QuizSession.reset`). A quiz can be
taken while it is written: :meth:`QuizSession.fill` adds each question as the agent hands it on. The command
line (``ta quiz --take``) and the web app both grade through it; the ``*_markdown`` functions below are how
the web page shows a session.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from quizgen.schema import LETTERS, Quiz, QuizItem
from tutor.errors import InputError


@dataclass(frozen=True)
class Feedback:
    """What a student sees after answering one question."""

    correct: bool
    right_letter: str
    explanation: str  # why the right option is right
    why_wrong: str | None  # why the chosen option is wrong (None when the answer is right)
    chosen: str = ""  # the letter the student chose


class QuizSession:
    """Answers and score for one quiz: ``session.answer(index, letter) -> Feedback``."""

    def __init__(self, quiz: Quiz, requested: int | None = None) -> None:
        """Grade ``quiz``; ``requested``: how many questions it will have once written (default: as many as now)."""
        self.quiz = quiz
        self.requested = len(quiz.questions) if requested is None else requested
        self.writing = False  # questions are still being added (see fill)
        self.answers: dict[int, str] = {}

    @property
    def total(self) -> int:
        """How many questions the quiz has."""
        return len(self.quiz.questions)

    @property
    def answered(self) -> int:
        """How many questions have been answered."""
        return len(self.answers)

    @property
    def score(self) -> int:
        """How many answers were right."""
        return sum(self.quiz.questions[i].question.answer == letter for i, letter in self.answers.items())

    @property
    def finished(self) -> bool:
        """Every question has an answer."""
        return self.answered == self.total

    def add(self, item: QuizItem) -> None:
        """Append a question the agent has just written (the quiz grows while it is taken)."""
        self.quiz.questions.append(item)

    def fill(self, items: Iterable[QuizItem]) -> Iterator[QuizItem]:
        """Add each of ``items`` (an agent's stream) as it arrives and yield it; ``writing`` until they end."""
        self.writing = True
        try:
            for item in items:
                self.add(item)
                yield item
        finally:
            self.writing = False

    def answer(self, index: int, letter: str) -> Feedback:
        """Answer question ``index`` (0-based) with ``letter`` (A-D, any case); answering again replaces it.

        Raises:
            InputError: (a ``ValueError``) for an index outside the quiz or a letter other than A-D.
        """
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.total:
            if not self.total:
                raise InputError(f"no question {index!r}: the quiz has no questions yet")
            raise InputError(f"no question {index!r}: this quiz has questions 0 to {self.total - 1}")
        choice = str(letter).strip().upper()
        if choice not in LETTERS:
            raise InputError(f"answer with a letter A-D, got {letter!r}")
        self.answers[index] = choice
        return self._feedback(index, choice)

    def feedback(self, index: int) -> Feedback | None:
        """The feedback on the answer given to question ``index``; None when it has no answer yet."""
        choice = self.answers.get(index)
        return None if choice is None else self._feedback(index, choice)

    def _feedback(self, index: int, choice: str) -> Feedback:
        question = self.quiz.questions[index].question
        correct = choice == question.answer
        return Feedback(
            correct=correct,
            right_letter=question.answer,
            explanation=question.explanation,
            why_wrong=None if correct else question.wrong_reasons.get(choice),  # type: ignore[call-overload]
            chosen=choice,
        )

    def reset(self) -> None:
        """Forget every answer (the same quiz, taken again)."""
        self.answers.clear()

    def summary(self) -> str:
        """The score in words."""
        return f"{self.score}/{self.total} correct ({self.answered} answered)"


# ---- the session as the web page shows it (Markdown; the two feedback classes are styled by the page)


def question_markdown(session: QuizSession, index: int) -> str:
    """One question: progress, an unverified mark when the checker could not confirm it, the stem."""
    if not session.total:
        return "*No quiz yet: choose a topic and press **Generate quiz**.*"
    item = session.quiz.questions[index]
    head = f"**Question {index + 1} of {session.requested}**"
    if not item.verified:
        issues = "; ".join(item.issues)
        head += f"  \n⚠️ *Unverified: the checker could not confirm this question{': ' + issues if issues else ''}.*"
    return f"{head}\n\n{item.question.stem}"


def option_choices(session: QuizSession, index: int) -> list[tuple[str, str]]:
    """The four options of question ``index`` as (label, letter) pairs: ``("B. Cross-entropy", "B")``."""
    if not session.total:
        return []
    options = session.quiz.questions[index].question.options
    return [(f"{letter}. {text}", letter) for letter, text in zip(LETTERS, options, strict=True)]


def feedback_markdown(session: QuizSession, index: int) -> str:
    """Right or wrong, the right answer, its explanation, and why the chosen option was wrong ("" if unanswered)."""
    fb = session.feedback(index)
    if fb is None:
        return ""
    right = f"{fb.right_letter}. {session.quiz.questions[index].question.option(fb.right_letter)}"
    if fb.correct:
        return f'<div class="feedback-right">✓ <b>Correct!</b> {right}</div>\n\n{fb.explanation}'
    why = f"\n\n**Why your choice is wrong:** {fb.why_wrong}" if fb.why_wrong else ""
    wrong = f'<div class="feedback-wrong">✗ <b>Not quite.</b> The right answer is {right}</div>'
    return f"{wrong}\n\n{fb.explanation}{why}"


def score_markdown(session: QuizSession) -> str:
    """The running score, or the final score once the quiz is written and every question answered."""
    if not session.total:
        return ""
    if not session.writing and session.finished:
        return f"### Final score: {session.score} / {session.answered}"
    written = f"{session.total} of {session.requested} questions written"
    return f"**Score:** {session.score} / {session.answered} answered ({written})"
