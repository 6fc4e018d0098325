"""Mastery: how well a student knows a topic or a learning objective, from their answers.

Mastery is a **recency-weighted accuracy**: each answer counts half as much as the answer given
:data:`HALF_LIFE` answers after it on the same topic, and one imaginary answer, half right, is added, so
``(sum of weights of right answers + 0.5) / (sum of weights + 1)``. One right answer is 75 %, one wrong 25 %,
and a topic answered wrong long ago but right the last four times is mostly mastered.

Why not FSRS retrievability: it says whether a card will be *recalled*, and it is reset by every review: right
after a wrong answer a card's retrievability is 1.0 (nothing has been forgotten yet), so the topic a student just
failed would look mastered. Its default parameters are also fitted to Anki users, not to this class. Why answers
rather than days: a student who practises once a month should not lose mastery to the calendar, and the last
few answers are what a teacher reads as "struggles now".
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tutor.progress.store import Attempt

# The objectives the grounded quiz writer (quizgen.grounded) gives its questions, each naming one course term.
GROUNDED_OBJECTIVE = re.compile(
    r"(?:Identify (?P<a>.+) from its definition|Recall what (?P<b>.+) is|Recall a fact about (?P<c>.+)"
    r"|Recognise (?P<d>.+) in context)"
)
HALF_LIFE = 4  # answers: an answer weighs half as much as the one given 4 answers later on the same topic
PRIOR = 1.0  # one imaginary answer, half right


@dataclass(frozen=True)
class Mastery:
    """A student's mastery of one topic or objective."""

    name: str
    value: float  # 0-1, recency-weighted accuracy (see the module docstring)
    answers: int
    correct: int


def score(outcomes: list[bool]) -> float:
    """The recency-weighted accuracy of ``outcomes`` (oldest first), with the half-right prior."""
    decay = 0.5 ** (1 / HALF_LIFE)
    weights = [decay ** (len(outcomes) - 1 - i) for i in range(len(outcomes))]
    right = sum(w for w, ok in zip(weights, outcomes, strict=True) if ok)
    return (right + PRIOR * 0.5) / (sum(weights) + PRIOR)


def mastery(attempts: Iterable[Attempt], by: Callable[[Attempt], str] = lambda a: a.topic) -> list[Mastery]:
    """Mastery per group (``by``: the topic by default; ``lambda a: a.objective`` per objective), weakest first."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for a in sorted(attempts, key=lambda a: a.answered):
        groups[by(a)].append(a.correct)
    found = [Mastery(name, score(ok), len(ok), sum(ok)) for name, ok in groups.items()]
    return sorted(found, key=lambda m: (m.value, m.name))


def objective_term(objective: str) -> str | None:
    """The course term a grounded question's objective names ("Recall what dropout is" -> "dropout"), else None."""
    found = GROUNDED_OBJECTIVE.fullmatch(objective.strip())
    return next((term for term in found.groups() if term), None) if found else None
