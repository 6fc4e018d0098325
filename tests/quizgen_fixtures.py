"""Hand-made questions and quizzes shared by the quizgen tests."""

from __future__ import annotations

from typing import Any

from quizgen.schema import Question, Quiz, QuizItem, QuizMetadata


def make_question(**changes: Any) -> Question:
    """A good question; ``changes`` override fields (validated)."""
    fields: dict[str, Any] = {
        "stem": "What does the learning rate control in gradient descent?",
        "options": [
            "The size of each update",
            "The number of layers",
            "The size of the dataset",
            "The order of the examples",
        ],
        "answer": "A",
        "explanation": "Each step moves the weights by the learning rate times the gradient.",
        "wrong_reasons": {
            "B": "The architecture sets the layers.",
            "C": "The dataset is fixed before training.",
            "D": "Shuffling orders the examples.",
        },
        "difficulty": "medium",
        "bloom_level": "understand",
        "objective": "Explain what the learning rate controls",
    }
    fields.update(changes)
    return Question(**fields)


def make_quiz(n: int = 3, topic: str = "gradient descent") -> Quiz:
    """A quiz of ``n`` distinct good questions, the last one flagged."""
    stems = [
        "What does the learning rate control in gradient descent?",
        "Which sign shows that a learning rate is too large?",
        "How does stochastic gradient descent differ from batch gradient descent?",
        "Why do we shuffle examples between epochs?",
    ]
    items = []
    for i in range(n):
        question = make_question(stem=stems[i % len(stems)] + ("" if i < len(stems) else f" (variant {i})"))
        flagged = i == n - 1
        items.append(
            QuizItem(
                question=question,
                verified=not flagged,
                attempts=3 if flagged else 1,
                issues=["verification: answering blind, the model chose B"] if flagged else [],
            )
        )
    return Quiz(topic=topic, questions=items, metadata=QuizMetadata(model="hand", seed=1))
