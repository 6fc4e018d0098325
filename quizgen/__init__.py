"""quizgen: quizzes that are valid by construction and checked before a student sees them.

``QuizAgent(model).stream(topic, n=10)`` yields :class:`QuizItem` objects (a :class:`Question` with
``verified``, ``attempts`` and ``issues``); ``QuizSession(quiz)`` grades answers; :mod:`quizgen.export`
writes JSON, Moodle GIFT, QTI 2.1 and Anki.
"""

from __future__ import annotations

from quizgen.grade import Feedback, QuizSession
from quizgen.program import QuizAgent
from quizgen.schema import Question, QuestionDraft, Quiz, QuizItem, QuizMetadata

__all__ = ["Feedback", "Question", "QuestionDraft", "Quiz", "QuizAgent", "QuizItem", "QuizMetadata", "QuizSession"]
