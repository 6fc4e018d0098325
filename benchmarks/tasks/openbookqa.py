"""OpenBookQA, in AI2's original JSONL (``question.stem``, ``question.choices[{text, label}]``, ``answerKey``).

The hub's ``allenai/openbookqa`` (``main``) flattens the same data (``question_stem``,
``choices`` {text, label}); both shapes are read. The loglik context is the bare stem, as in
lm-evaluation-harness's ``openbookqa`` task.
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
    """Rows -> questions; ``seed`` is unused."""
    return [parse_row(row, where) for where, row in rows]


def _stem_and_choices(row: dict[str, Any], where: str) -> tuple[str, list[str], list[Any]]:
    question = row.get("question")
    if isinstance(question, dict):  # AI2's original JSONL
        options = question.get("choices")
        if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
            raise DataError(f"{where}: no 'question.choices' list of {{'text', 'label'}}")
        return (
            text_value(question.get("stem"), where, "'question.stem'"),
            [text_value(o.get("text"), where, "a choice text") for o in options],
            [o.get("label") for o in options],
        )
    choices = row.get("choices")  # the hub's flattened rows
    if not isinstance(choices, dict) or not isinstance(choices.get("text"), list):
        raise DataError(f"{where}: neither 'question.choices' (AI2 JSONL) nor 'choices' (hub) present")
    labels = choices.get("label") or []
    if not isinstance(labels, list):
        raise DataError(f"{where}: 'choices.label' must be a list of labels, got {labels!r}"[:300])
    stem = text_value(row.get("question_stem"), where, "'question_stem'")
    return stem, [text_value(t, where, "a choice text") for t in choices["text"]], labels


def parse_row(row: dict[str, Any], where: str) -> MCQuestion:
    """One row (either shape) -> MCQuestion, or DataError naming ``where``."""
    stem, texts, labels = _stem_and_choices(row, where)
    if len(labels) != len(texts) or None in labels:
        raise DataError(f"{where}: every choice needs a text and a label")
    labels = letter_labels(labels, where)
    key = row.get("answerKey")
    q = MCQuestion(
        id=text_value(row.get("id"), where, "'id'"),
        question=stem,
        choices=tuple(texts),
        gold=(gold_index(labels, key.strip() if isinstance(key, str) else key, where),),
        context=stem,
    )
    return check_question(q, where, N_CHOICES)


TASKS = (
    Task(
        name="openbookqa",
        title="OpenBookQA",
        parse=parse,
        hub=("allenai/openbookqa", "main"),
        splits=("train", "validation", "test"),
        default_split="test",
        file_pattern="openbookqa/openbookqa_{split}.jsonl",
    ),
)
