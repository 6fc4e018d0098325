"""ARC-Challenge (AI2 Reasoning Challenge), in the hub's row schema.

Rows: ``id``, ``question``, ``choices`` {``text``: [...], ``label``: [...]}, ``answerKey``. A few hub
questions have 3 or 5 choices, or labels "1".."4": labels are mapped to letters, so "3" is "C".
The loglik context is lm-evaluation-harness's ``arc_challenge`` prompt, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks.tasks.common import (
    DataError,
    MCQuestion,
    Task,
    check_question,
    gold_index,
    letter_labels,
    text_value,
)

N_CHOICES = (3, 5)


def parse(rows: Iterable[tuple[str, dict[str, Any]]], seed: int = 0) -> list[MCQuestion]:
    """Rows -> questions; ``seed`` is unused (ARC keeps its own order)."""
    return [parse_row(row, where) for where, row in rows]


def parse_row(row: dict[str, Any], where: str) -> MCQuestion:
    """One hub-schema row -> MCQuestion, or DataError naming ``where``."""
    choices = row.get("choices")
    if not isinstance(choices, dict) or not isinstance(choices.get("text"), list):
        raise DataError(f"{where}: no 'choices' {{'text': [...], 'label': [...]}}")
    texts = [text_value(t, where, "a choice text") for t in choices["text"]]
    labels = choices.get("label") or []
    if not isinstance(labels, list) or len(labels) != len(texts):
        raise DataError(f"{where}: {len(texts)} choice texts but labels {labels!r}"[:300])
    labels = letter_labels(labels, where)
    question = text_value(row.get("question"), where, "'question'")
    q = MCQuestion(
        id=text_value(row.get("id"), where, "'id'"),
        question=question,
        choices=tuple(texts),
        gold=(gold_index(labels, row.get("answerKey"), where),),
        context=f"Question: {question}\nAnswer:",
    )
    return check_question(q, where, N_CHOICES)


TASKS = (
    Task(
        name="arc_challenge",
        title="ARC-Challenge",
        parse=parse,
        hub=("allenai/ai2_arc", "ARC-Challenge"),
        splits=("train", "validation", "test"),
        default_split="validation",
        file_pattern="arc/arc_challenge_{split}.jsonl",
    ),
)
