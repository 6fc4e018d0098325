"""A quiz session: answer a question, get feedback, keep a running score. A new quiz gets a new session.

The session holds the only mutable state of taking a quiz, so state cannot leak from one quiz into the
next: build a new :class:`QuizSession` for each quiz (or call :meth:`QuizSession.reset`). A quiz can be
taken while it is written: :meth:`QuizSession.fill` adds each question as the agent hands it on. The command
line (``ta quiz --take``) and the web app both grade through it; the ``*_markdown`` functions below are how
the web page shows a session, each question with its source (the course passage its key and explanation
quote) or marked ungrounded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quizgen.schema import LETTERS, Question, Quiz, QuizItem, Source
from tutor.errors import InputError

DOWNLOADS = {"json": ".json", "gift": ".gift.txt", "qti": ".qti.zip", "anki": ".anki.txt"}  # format -> file suffix


@dataclass(frozen=True)
class Feedback:
    """What a student sees after answering one question."""

    correct: bool
    right_letter: str
    explanation: str  # why the right option is right
    why_wrong: str | None  # why the chosen option is wrong (None when the answer is right)
    chosen: str = ""  # the letter the student chose
    source: str | None = None  # "doc › heading" of the passage the explanation quotes; None: written ungrounded


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
        """Add each of ``items`` (an agent's stream) as it arrives and yield it; ``writing`` until they end.

        When the items run out before ``requested`` (a grounded quiz is as long as its course material allows),
        the quiz is as long as what was written: "Question 3 of 3", not "of 5".
        """
        self.writing = True
        try:
            for item in items:
                self.add(item)
                yield item
            self.requested = self.total
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
            source=question.source.cite() if question.source else None,
        )

    def reset(self) -> None:
        """Forget every answer (the same quiz, taken again)."""
        self.answers.clear()

    def summary(self) -> str:
        """The score in words."""
        return f"{self.score}/{self.total} correct ({self.answered} answered)"


# ---- the session as the web page shows it (Markdown; the two feedback classes are styled by the page)

WITHOUT_SOURCE = "written by the model without a course source"
UNGROUNDED = f"(ungrounded: {WITHOUT_SOURCE})"


def question_markdown(session: QuizSession, index: int) -> str:
    """One question: progress, a mark when it is ungrounded or the checker could not confirm it, the stem."""
    if not session.total:
        return "*No quiz yet: choose a topic and press **Generate quiz**.*"
    item = session.quiz.questions[index]
    head = f"**Question {index + 1} of {session.requested}**"
    if not item.question.grounded:
        head += f"  \n⚠️ *Ungrounded: {WITHOUT_SOURCE}.*"
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
    """Right or wrong, the right answer, its explanation and source, why the chosen option was wrong ("" if unanswered).

    A grounded explanation is a sentence of the course: it is shown as a quotation with the place it comes from
    ("Source: doc › heading"); an ungrounded one says so.
    """
    fb = session.feedback(index)
    if fb is None:
        return ""
    question = session.quiz.questions[index].question
    right = f"{fb.right_letter}. {question.option(fb.right_letter)}"
    if fb.correct:
        head = f'<div class="feedback-right">✓ <b>Correct!</b> {right}</div>'
    else:
        head = f'<div class="feedback-wrong">✗ <b>Not quite.</b> The right answer is {right}</div>'
    parts = [head, quoted(fb.explanation, question.source)]
    if fb.why_wrong:
        cited = reason_source(question, fb.chosen)
        parts.append(f"**Why your choice is wrong:** {fb.why_wrong}{f' *(Source: {cited})*' if cited else ''}")
    return "\n\n".join(parts)


def feedback_text(fb: Feedback, question: Question | None = None) -> str:
    """The feedback in a terminal: a wrong choice and why it is wrong, the right answer and why, the source.

    Each reason sits beside the option it is about ("you chose A (Pairwise deletion). <why A is wrong>"), so a
    student does not read the wrong option's reason as the right one's.
    """

    def named(letter: str) -> str:
        return f"{letter} ({question.option(letter)})" if question is not None and letter else letter

    if fb.correct:
        lines = [f"Correct. {fb.explanation}"]
    else:
        lines = [
            f"Not quite: you chose {named(fb.chosen)}. {fb.why_wrong or ''}".rstrip(),
            f"The answer is {named(fb.right_letter)}. {fb.explanation}",
        ]
    lines.append(f"Source: {fb.source}" if fb.source else f"Source: {UNGROUNDED}")
    return "\n".join(lines) + "\n"


def quoted(explanation: str, source: Source | None) -> str:
    """The explanation, then the course sentence it rests on (once, when it is that sentence) and its place."""
    if source is None:
        return f"{explanation}\n\n**Source:** *{UNGROUNDED}*"
    quote = " ".join(source.quote.split())
    said = "" if quote == " ".join(explanation.split()) else f"{explanation}\n\n"
    return f"{said}> {quote}\n\n**Source:** {source.cite()}"


def reason_source(question: Question, letter: str) -> str | None:
    """Where the reason a wrong option is wrong comes from (that option's own passage), if it has a source."""
    source = question.reason_sources.get(letter)  # type: ignore[call-overload]
    return source.cite() if source is not None else None


def progress_markdown(session: QuizSession, asked: int) -> str:
    """How far the writing is, or how it ended: all ``asked`` questions, or as many as could be written."""
    done = session.total
    if session.writing:
        return f"{done} of {asked} questions ready." + (f" Writing question {done + 1}…" if done < asked else "")
    if done == asked:
        return f"All {done} questions ready."
    if not done:
        return "No question could be written and checked on this topic: try a broader topic, or add notes on it."
    return f"{done} of {asked} questions: all that could be written and checked on this topic."


def score_markdown(session: QuizSession) -> str:
    """The running score, or the final score once the quiz is written and every question answered."""
    if not session.total:
        return ""
    if not session.writing and session.finished:
        return f"### Final score: {session.score} / {session.answered}"
    written = f"{session.total} of {session.requested} questions written"
    return f"**Score:** {session.score} / {session.answered} answered ({written})"


def save_quiz(session: QuizSession, fmt: str, folder: Path) -> str:
    """Write the session's quiz in ``fmt`` (one of :data:`DOWNLOADS`) to a new file under ``folder``; its path."""
    from quizgen import export

    if not session.total:
        raise InputError("there is no quiz to download yet: generate one first")
    if fmt not in DOWNLOADS:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(DOWNLOADS)}")
    data = export.dumps(session.quiz, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix="quiz-", suffix=DOWNLOADS[fmt], delete=False) as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return f.name
