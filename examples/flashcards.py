"""Flashcards from a passage: a new DSPy signature on the engine, valid by construction."""

import dspy
from pydantic import BaseModel, Field

from tutor.engine import make_lm


class Card(BaseModel):
    """One card: a question on the front, its answer on the back."""

    front: str = Field(min_length=5, max_length=120)
    back: str = Field(min_length=1, max_length=160)


class MakeFlashcards(dspy.Signature):
    """Write flashcards that test the key facts of the passage."""

    passage: str = dspy.InputField()
    cards: list[Card] = dspy.OutputField()


def flashcards(model, passage: str) -> list[Card]:
    """The cards for ``passage``: the JSONAdapter makes a schema of ``cards``, the engine decodes under it."""
    with dspy.context(lm=make_lm(model, max_tokens=600), adapter=dspy.JSONAdapter()):
        return dspy.Predict(MakeFlashcards)(passage=passage).cards
