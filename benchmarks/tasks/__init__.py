"""The benchmark tasks, collected from their files by command-line name, and one loader for all of them.

Each task file (``arc.py``, ``truthfulqa.py``, ``openbookqa.py``) defines its own :class:`Task` records in
``TASKS``; this module only gathers them, in the order ``ta bench compare`` shows their columns.

``load_task(name, data=None, *, split=None, limit=None, seed=0, sample=None)`` reads a local file
(``data`` is the file, or a directory laid out like ``../shared/data``) or, with no ``data``, the
dataset hub. ``limit`` keeps the first N questions; ``sample`` draws N at random (seeded).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks.tasks import arc, openbookqa, truthfulqa
from benchmarks.tasks.common import DataError, MCQuestion, Task, read_rows, render_mc, unique_ids

TASKS: dict[str, Task] = {t.name: t for module in (arc, truthfulqa, openbookqa) for t in module.TASKS}


def get_task(name: str) -> Task:
    """The task by name, or a DataError listing the names there are."""
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


def check_subset(limit: int | None, sample: int | None) -> None:
    """``--limit`` and ``--sample`` are positive, and not both given; else a DataError saying so."""
    for flag, value in (("--limit", limit), ("--sample", sample)):
        if value is not None and value < 1:
            raise DataError(f"{flag} must be at least 1, got {value}")
    if limit is not None and sample is not None:
        raise DataError("--limit takes the first N questions, --sample a random N: pass one of them")


def load_task(
    name: str,
    data: Path | str | None = None,
    *,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    sample: int | None = None,
) -> list[MCQuestion]:
    """Load a task's questions, validated; errors name the file and row.

    ``limit`` keeps the first N; ``sample`` draws N at random with ``seed`` (the same N for the same
    seed and file), kept in file order. A file ordered by answer (the shared ARC-Challenge validation
    file is: its first 64 answers are all "A") makes the first N a biased subset; a sample is not.
    """
    task = get_task(name)
    check_subset(limit, sample)
    if data is not None:
        path = task.local_file(data, split)
        source, rows = str(path), read_rows(path)
    else:
        split = split or task.default_split
        source, rows = f"{task.hub[0]} [{split}]", task.hub_rows(split)
    questions = unique_ids(task.parse(rows, seed), source)
    if not questions:
        raise DataError(f"{source} has no questions: pass --data PATH to a file with questions")
    if sample is not None:
        if sample > len(questions):
            raise DataError(f"--sample {sample} asks for more than the {len(questions)} questions in {source}")
        keep = sorted(random.Random(seed).sample(range(len(questions)), sample))
        return [questions[i] for i in keep]
    return questions[:limit] if limit else questions


def answer_skew(subset: Sequence[MCQuestion], everything: Sequence[MCQuestion]) -> str | None:
    """A warning when the subset's right letters are far from the whole set's (a file sorted by answer), else None.

    The most over-represented letter is tested against its share of the whole set: more than three
    binomial standard deviations above it (about 1 in 700 by chance for a random subset).
    """
    if len(subset) < 2 or len(subset) == len(everything):
        return None
    first = Counter(q.gold_letters[0] for q in subset)
    whole = Counter(q.gold_letters[0] for q in everything)
    n = len(subset)

    def z(letter: str) -> float:
        p = whole[letter] / len(everything)
        return (first[letter] - n * p) / math.sqrt(n * p * (1 - p)) if 0 < p < 1 else 0.0

    letter = max(first, key=z)
    if z(letter) <= 3:
        return None
    shares = ", ".join(f"{k} {v}" for k, v in sorted(first.items()))
    return (
        f"warning: the right answers of these {n} questions are {shares} ({letter} is "
        f"{100 * whole[letter] / len(everything):.0f}% of the whole file): it is ordered by answer, so the first "
        f"N are a biased subset; --sample {n} draws a random {n} instead"
    )


__all__ = [
    "TASKS",
    "DataError",
    "MCQuestion",
    "Task",
    "answer_skew",
    "check_subset",
    "get_task",
    "load_task",
    "render_mc",
]
