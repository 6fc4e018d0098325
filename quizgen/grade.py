"""A quiz session: answer a question, get feedback, keep a running score. A new quiz gets a new session.

The session holds the only mutable state of taking a quiz, so state cannot leak from one quiz into the
next: build a new :class:`QuizSession` for each quiz (or call :meth:`QuizSession.reset`).
"""

from __future__ import annotations

from dataclasses import dataclass

from quizgen.schema import LETTERS, Quiz


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

    def __init__(self, quiz: Quiz) -> None:
        self.quiz = quiz
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

    def answer(self, index: int, letter: str) -> Feedback:
        """Answer question ``index`` (0-based) with ``letter`` (A-D, any case); answering again replaces it.

        Raises:
            ValueError: for an index outside the quiz or a letter other than A-D.
        """
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.total:
            raise ValueError(f"no question {index!r}: this quiz has questions 0 to {self.total - 1}")
        choice = str(letter).strip().upper()
        if choice not in LETTERS:
            raise ValueError(f"answer with a letter A-D, got {letter!r}")
        self.answers[index] = choice
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
