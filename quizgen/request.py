"""What a quiz is asked for: :class:`QuizRequest`, the one validated value the CLI and the app hand the agent.

A request checks itself when it is built, so a bad topic, N or source text fails before a model is loaded or a
question is written, with a message that says what to pass instead (:class:`QuizRequestError`). The limits a
request is held to live here and nowhere else: the command line and the web page read them from this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from quizgen.schema import DIFFICULTIES, TOPIC_MAX
from tutor.errors import InputError

MAX_QUESTIONS = 50  # one quiz; more is a question bank, not a quiz
SOURCE_MAX_CHARS = 200_000  # a chapter, not a book (prompts carry only the slice each question needs)
DEFAULT_QUESTIONS = 10
DEFAULT_TEMPERATURE = 0.4
MAX_TEMPERATURE = 2.0
KB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a name, never a path: the page may send it


class QuizRequestError(InputError):
    """A quiz request the user can fix (a bad topic, number of questions, source text...); the message says how.

    An :class:`~tutor.errors.InputError`: a ``TutorError`` (``ta`` prints it as one line) and a ``ValueError``.
    """


@dataclass(frozen=True)
class QuizRequest:
    """One quiz to write. Validated and normalised on construction; ``replace()`` validates again.

    Attributes:
        topic: what the quiz is about (1 to ``TOPIC_MAX`` characters; runs of whitespace become one space).
        n: how many questions (1 to ``MAX_QUESTIONS``).
        difficulty: one of ``quizgen.schema.DIFFICULTIES``.
        source_text: the student's notes or a chapter to quiz on (stripped; at most ``SOURCE_MAX_CHARS``), or None.
        seed: makes the quiz repeatable on one backend and machine; None: a new quiz each time.
        temperature: the writer's sampling temperature (0 is greedy, at most ``MAX_TEMPERATURE``).
        kb: the name of a course knowledge base to write from, or None (not read by today's writer).
        grounded: keys and explanations must come from the course text (not read by today's writer).
        parallel: how many questions the grounded writer checks with the model at once (1 to ``MAX_PARALLEL``;
            the llama.cpp backend decodes concurrent calls in one batch); None: one at a time on a local backend
            (most of the work is prompt evaluation, which does not batch on a CPU), the model's concurrency on a
            server (``quizgen.grounded.default_width``).
    """

    topic: str
    n: int = DEFAULT_QUESTIONS
    difficulty: str = "medium"
    source_text: str | None = field(default=None, repr=False)  # up to 200k characters: kept out of logs
    seed: int | None = None
    temperature: float = DEFAULT_TEMPERATURE
    kb: str | None = None
    grounded: bool = True
    parallel: int | None = None

    def __post_init__(self) -> None:
        # Frozen: the cleaned values are set once, here, through object.__setattr__.
        object.__setattr__(self, "topic", _topic(self.topic))
        if not (_is_int(self.n) and 1 <= self.n <= MAX_QUESTIONS):
            raise QuizRequestError(f"the number of questions must be between 1 and {MAX_QUESTIONS}, got {self.n!r}")
        if self.difficulty not in DIFFICULTIES:
            raise QuizRequestError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}")
        object.__setattr__(self, "source_text", _source(self.source_text))
        if self.seed is not None and not _is_int(self.seed):
            raise QuizRequestError(f"the seed must be a whole number, got {self.seed!r}")
        t = self.temperature
        if not (isinstance(t, int | float) and not isinstance(t, bool) and 0 <= t <= MAX_TEMPERATURE):
            raise QuizRequestError(f"temperature must be between 0 and {MAX_TEMPERATURE:g}, got {t!r}")
        object.__setattr__(self, "temperature", float(t))
        if self.kb is not None and not (isinstance(self.kb, str) and KB_NAME.fullmatch(self.kb)):
            raise QuizRequestError(
                f"the knowledge base must be a name of letters, digits, '.', '_' or '-' (at most 64), got {self.kb!r}"
            )
        if not isinstance(self.grounded, bool):
            raise QuizRequestError(f"grounded must be True or False, got {self.grounded!r}")
        if self.parallel is not None and not (_is_int(self.parallel) and 1 <= self.parallel <= MAX_PARALLEL):
            raise QuizRequestError(f"parallel must be between 1 and {MAX_PARALLEL}, got {self.parallel!r}")

    def replace(self, **changes: Any) -> QuizRequest:
        """A copy with ``changes``, validated like a new request."""
        return replace(self, **changes)


SURROGATE = re.compile("[\ud800-\udfff]")  # valid in a Python str, not encodable as UTF-8 (a tokenizer fails)
MAX_PARALLEL = 16


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python, not a count to us


def _topic(topic: Any) -> str:
    if not isinstance(topic, str) or not topic.strip():
        raise QuizRequestError("the topic is empty: name what the quiz is about, e.g. 'gradient descent'")
    if SURROGATE.search(topic):
        raise QuizRequestError("the topic holds a lone surrogate (a broken \\uD8xx escape): send it as UTF-8 text")
    topic = " ".join(topic.split())
    if len(topic) > TOPIC_MAX:
        raise QuizRequestError(
            f"the topic is {len(topic):,} characters long: keep it under {TOPIC_MAX} "
            "(pass long text as the source, e.g. `ta quiz TOPIC --source notes.txt`)"
        )
    return topic


def _source(source_text: Any) -> str | None:
    if source_text is None:
        return None
    if not isinstance(source_text, str):
        raise QuizRequestError(f"the source must be text, got {type(source_text).__name__}")
    if SURROGATE.search(source_text):
        raise QuizRequestError("the source holds a lone surrogate (a broken \\uD8xx escape): send it as UTF-8 text")
    if "\x00" in source_text:
        raise QuizRequestError("the source holds binary data (NUL bytes): pass a plain-text file (.txt or .md)")
    if not source_text.strip():
        raise QuizRequestError("the source text is empty: pass a file with your notes, or leave the source out")
    if len(source_text) > SOURCE_MAX_CHARS:
        raise QuizRequestError(
            f"the source is {len(source_text):,} characters long: pass one chapter (under {SOURCE_MAX_CHARS:,})"
        )
    return source_text.strip()
