"""Spaced repetition: every answered question is a card scheduled by FSRS (the ``fsrs`` package, 6.x).

A quiz answer is binary, so it maps to two of FSRS's four ratings, as its maintainers advise for pass/fail
grading: right is Good, wrong is Again. Fuzzing is off: the same answers at the same times give the same due
dates (tests run on a test clock; a class of students does not need the spread fuzzing gives a large deck).
A card answered right the first time is due again ten minutes later (FSRS's second learning step), one answered
wrong after one minute; then the intervals grow with each right answer.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any


@cache
def scheduler() -> Any:
    """The one FSRS scheduler (default parameters, desired retention 0.9, no fuzz)."""
    from fsrs import Scheduler

    return Scheduler(enable_fuzzing=False)


def schedule(state: str | None, correct: bool, when: datetime) -> tuple[str, datetime]:
    """The card after an answer at ``when``: (its new state as JSON, when it is due). ``state`` None: a new card."""
    from fsrs import Card, Rating

    card = Card.from_json(state) if state else Card()
    card, _ = scheduler().review_card(card, Rating.Good if correct else Rating.Again, when)
    return card.to_json(), card.due


def retrievability(state: str, when: datetime) -> float:
    """FSRS's estimate that the student would recall the card at ``when`` (0-1)."""
    from fsrs import Card

    return float(scheduler().get_card_retrievability(Card.from_json(state), when))
