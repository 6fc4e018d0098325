"""The benchmark tasks, by the names used on the command line, and one loader for all of them.

``load_task(name, data=None, split=None, limit=None, seed=0, sample=None)`` reads a local file
(``data`` is the file, or a directory laid out like ``../shared/data``) or, with no ``data``, the
dataset hub. ``limit`` keeps the first N questions; ``sample`` draws N at random (seeded).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.tasks import arc, openbookqa, truthfulqa
from benchmarks.tasks.common import DataError, MCQuestion, read_csv, read_jsonl, render_mc, unique_ids

Rows = Iterable[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Task:
    """A dataset and how its rows become questions."""

    name: str  # the command-line name
    parse: Callable[[Rows, int], list[MCQuestion]]  # (where, row) pairs, seed -> questions
    hub: tuple[str, str]  # datasets.load_dataset(path, config)
    splits: tuple[str, ...]  # the hub's splits
    default_split: str  # used when --split is not given
    file_pattern: str  # the local file inside a data directory, "{split}" filled in
    scoring: str = "single"  # "single": one gold; "mass": probability mass on the gold set (MC2)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("arc_challenge", arc.parse, arc.HUB, arc.SPLITS, arc.DEFAULT_SPLIT, arc.FILE_PATTERN),
        Task(
            "openbookqa",
            openbookqa.parse,
            openbookqa.HUB,
            openbookqa.SPLITS,
            openbookqa.DEFAULT_SPLIT,
            openbookqa.FILE_PATTERN,
        ),
        Task(
            "truthfulqa_mc1",
            truthfulqa.parse_mc1,
            truthfulqa.HUB,
            truthfulqa.SPLITS,
            truthfulqa.DEFAULT_SPLIT,
            truthfulqa.FILE_PATTERN,
        ),
        Task(
            "truthfulqa_mc2",
            truthfulqa.parse_mc2,
            truthfulqa.HUB,
            truthfulqa.SPLITS,
            truthfulqa.DEFAULT_SPLIT,
            truthfulqa.FILE_PATTERN,
            scoring="mass",
        ),
    )
}


def get_task(name: str) -> Task:
    """The task by name, or a DataError listing the names there are."""
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


def resolve_file(task: Task, data: Path | str, split: str | None) -> Path:
    """``data`` itself if it is a file; inside a directory, the task's file for the split."""
    data = Path(data)
    if data.is_dir():
        data = data / task.file_pattern.format(split=split or task.default_split)
    return data


def read_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a local file, by extension: .jsonl / .json lines, or .csv."""
    return read_csv(path) if path.suffix.lower() == ".csv" else read_jsonl(path)


def hub_rows(task: Task, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows from the dataset hub (needs a network and the ``datasets`` package)."""
    if split not in task.splits:
        raise DataError(f"{task.name} has no split {split!r} on the hub: use one of {', '.join(task.splits)}")
    try:
        import datasets
    except ImportError as exc:
        raise DataError("reading from the hub needs `pip install datasets`; or pass --data PATH") from exc
    path, config = task.hub
    try:
        dataset = datasets.load_dataset(path, config, split=split)
    except Exception as exc:  # network, auth, missing split: all mean "use a local file"
        raise DataError(f"could not load {path}/{config} [{split}] from the hub ({exc}): pass --data PATH") from exc
    for n, row in enumerate(dataset, start=1):
        yield f"{path}/{config} [{split}] row {n}", dict(row)


def load_task(
    name: str, data: Path | str | None = None, split: str | None = None, limit: int | None = None, seed: int = 0,
    sample: int | None = None,
) -> list[MCQuestion]:  # fmt: skip
    """Load a task's questions, validated; errors name the file and row.

    ``limit`` keeps the first N; ``sample`` draws N at random with ``seed`` (the same N for the same
    seed and file), kept in file order. A file ordered by answer (the shared ARC-Challenge validation
    file is: its first 64 answers are all "A") makes the first N a biased subset; a sample is not.
    """
    task = get_task(name)
    for flag, value in (("--limit", limit), ("--sample", sample)):
        if value is not None and value < 1:
            raise DataError(f"{flag} must be at least 1, got {value}")
    if limit is not None and sample is not None:
        raise DataError("--limit takes the first N questions, --sample a random N: pass one of them")
    source = str(resolve_file(task, data, split)) if data is not None else f"{task.hub[0]} [{split}]"
    rows = read_rows(Path(source)) if data is not None else hub_rows(task, split or task.default_split)
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
    "get_task",
    "load_task",
    "render_mc",
    "resolve_file",
]
