"""quizgen: quizzes that are valid by construction and checked before a student sees them.

``QuizAgent(model).stream(QuizRequest("overfitting", n=10))`` yields :class:`QuizItem` objects (a
:class:`Question` with ``verified``, ``attempts`` and ``issues``); ``QuizSession(quiz)`` grades answers;
:mod:`quizgen.export` writes JSON, Moodle GIFT, QTI 2.1 and Anki.

``import quizgen`` stays light (pydantic, no DSPy): :class:`QuizAgent` loads DSPy on first use, so the command
line and the web page can read the request limits without paying for it.
"""

from __future__ import annotations

from typing import Any

from quizgen.grade import Feedback, QuizSession
from quizgen.request import QuizRequest, QuizRequestError
from quizgen.schema import Question, QuestionDraft, Quiz, QuizItem, QuizMetadata

__all__ = [
    "Feedback",
    "Question",
    "QuestionDraft",
    "Quiz",
    "QuizAgent",
    "QuizItem",
    "QuizMetadata",
    "QuizRequest",
    "QuizRequestError",
    "QuizSession",
]


def __getattr__(name: str) -> Any:
    if name == "QuizAgent":
        from quizgen.program import QuizAgent

        return QuizAgent
    raise AttributeError(f"module 'quizgen' has no attribute {name!r}")
