"""What every task shares: the :class:`Task` record, the question type, the loaders' checks, the MC renderer.

Loaders turn a dataset row into an :class:`MCQuestion` or raise :class:`DataError` naming the file
and the row: a benchmark that silently skips a malformed row reports a number over a different set
of questions than the one it claims.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.errors import BenchError

LETTERS = string.ascii_uppercase

Rows = Iterable[tuple[str, dict[str, Any]]]  # ("FILE row N", row) pairs: the place names the row in errors


class DataError(BenchError):
    """A dataset file or row cannot be read as a multiple-choice question; the message names it."""


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice question, choices shown as A, B, C... in order."""

    id: str  # unique within the task: predictions are keyed (and runs resumed) by it
    question: str  # the question text, without the options
    choices: tuple[str, ...]  # option texts, in display order
    gold: tuple[int, ...]  # indices of the correct choices (one for every task but truthfulqa_mc2)
    context: str  # lm-evaluation-harness's prompt for the loglik mode (e.g. "Question: ...\nAnswer:")
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # anything a report may want

    @property
    def letters(self) -> list[str]:
        """The option letters, ``["A", "B", ...]``."""
        return list(LETTERS[: len(self.choices)])

    @property
    def gold_letters(self) -> list[str]:
        """The letters of the correct choices."""
        return [LETTERS[i] for i in self.gold]


@dataclass(frozen=True)
class Task:
    """A dataset, where to find it, and how its rows become questions; each task file defines its own."""

    name: str  # the command-line name
    title: str  # its column in `ta bench compare`
    parse: Callable[[Rows, int], list[MCQuestion]]  # (where, row) pairs, seed -> questions
    hub: tuple[str, str]  # datasets.load_dataset(path, config)
    splits: tuple[str, ...]  # the hub's splits
    default_split: str  # used when --split is not given
    file_pattern: str  # the local file inside a data directory (../shared/data layout), "{split}" filled in
    scoring: Literal["single", "mass"] = "single"  # one gold letter; or the probability mass on the gold set (MC2)

    def local_file(self, data: Path | str, split: str | None) -> Path:
        """``data`` itself if it is a file; inside a directory, this task's file for the split."""
        data = Path(data)
        if data.is_dir():
            data = data / self.file_pattern.format(split=split or self.default_split)
        return data

    def hub_rows(self, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Rows from the dataset hub (needs a network and the ``datasets`` package)."""
        if split not in self.splits:
            raise DataError(f"{self.name} has no split {split!r} on the hub: use one of {', '.join(self.splits)}")
        try:
            import datasets
        except ImportError as exc:
            raise DataError("reading from the hub needs `pip install datasets`; or pass --data PATH") from exc
        path, config = self.hub
        try:
            dataset = datasets.load_dataset(path, config, split=split)
        except Exception as exc:  # network, auth, missing split: all mean "use a local file"
            raise DataError(f"could not load {path}/{config} [{split}] from the hub ({exc}): pass --data PATH") from exc
        for n, row in enumerate(dataset, start=1):
            yield f"{path}/{config} [{split}] row {n}", dict(row)


def render_mc(q: MCQuestion) -> str:
    """The question with lettered options, asking for the letter alone.

    The letter is the first thing the assistant says, right after the chat template's assistant
    header, so each letter is one token: "A" after a newline, not " A" after "Answer:", which is a
    different token (and some tokenizers split " A" from a following word differently again).
    """
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(q.letters, q.choices, strict=True))
    allowed = ", ".join(q.letters[:-1]) + f" or {q.letters[-1]}"
    return f"{q.question}\n\n{options}\n\nAnswer with the letter of the correct option ({allowed})."


def render_mc_raw(q: MCQuestion) -> str:
    """The question as raw text, lm-evaluation-harness's MMLU format, for ``letter_raw``.

    No chat template: the answer is the next token after "Answer:", one of " A", " B"... (the
    space belongs to the letter, as in lm-evaluation-harness).
    """
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(q.letters, q.choices, strict=True))
    return f"Question: {q.question}\n{options}\nAnswer:"


def check_question(q: MCQuestion, where: str, n_choices: tuple[int, int]) -> MCQuestion:
    """Validate one loaded question; ``where`` is "FILE row N" for the error message."""
    low, high = n_choices
    if not q.id:
        raise DataError(f"{where}: missing id")
    if not q.question.strip():
        raise DataError(f"{where} (id {q.id}): empty question text")
    if not low <= len(q.choices) <= high:
        raise DataError(f"{where} (id {q.id}): {len(q.choices)} choices; this task allows {low} to {high}")
    if any(not c.strip() for c in q.choices):
        raise DataError(f"{where} (id {q.id}): an empty choice text")
    if not q.gold or any(not 0 <= g < len(q.choices) for g in q.gold):
        raise DataError(f"{where} (id {q.id}): no valid answer key")
    for text in (q.id, q.question, *q.choices):
        if _SURROGATE.search(text):  # JSON can escape one ("\ud800"); no tokenizer can encode it
            raise DataError(
                f"{where} (id {q.id!r}): a lone surrogate (a broken \\uD8xx escape) in {text!r}: fix the text"
            )
    return q


_SURROGATE = re.compile("[\ud800-\udfff]")


def text_value(value: Any, where: str, what: str) -> str:
    """A row's text field: a string (a number is read as its digits, missing as ""); a list or object is an error."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} must be text, got {type(value).__name__} {value!r}"[:300])
    if _SURROGATE.search(value):  # JSON can escape one ("\ud800"); no tokenizer (nor hash) can encode it
        raise DataError(f"{where}: a lone surrogate (a broken \\uD8xx escape) in {what}: {value!r}"[:300])
    return value


def _number(label: str) -> int | None:
    # ASCII digits only: "²" and "١" pass str.isdigit(), and int("²") raises
    return int(label) if label.isascii() and label.isdigit() else None


def letter_labels(labels: Sequence[Any], where: str) -> list[str]:
    """Map a row's choice labels to A, B, C...: "1".."5" become "A".."E"; duplicates are an error."""
    labels = [str(label).strip() for label in labels]
    if len(set(labels)) != len(labels):
        raise DataError(f"{where}: duplicate choice labels {labels}")
    numbers = [_number(label) for label in labels]
    if all(n is not None for n in numbers):
        labels = [
            LETTERS[n - 1] if n is not None and 1 <= n <= len(LETTERS) else label
            for n, label in zip(numbers, labels, strict=True)
        ]
    return labels


def gold_index(labels: list[str], key: Any, where: str) -> int:
    """The index of the answer key among the (lettered) labels."""
    if key is None or str(key).strip() == "":
        raise DataError(f"{where}: missing answer key")
    key = str(key).strip()
    number = _number(key)
    if number is not None and key not in labels:
        key = LETTERS[number - 1] if 1 <= number <= len(LETTERS) else key
    if key not in labels:
        raise DataError(f"{where}: answer key {key!r} is not one of the labels {labels}")
    return labels.index(key)


def read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("FILE row N", row) for each non-blank line; a line that is not a JSON object is an error."""
    path = existing_file(path)
    found = False
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path} row {n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg})") from exc
            except RecursionError as exc:  # "[[[[..." thousands deep: the parser recurses once per level
                raise DataError(f"{where}: JSON nested too deeply to be a question row") from exc
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
            found = True
            yield where, row
    if not found:
        raise DataError(f"{path} is empty: pass --data PATH to a file with questions")


def existing_file(path: Path | str) -> Path:
    """The path, if it is a non-empty file; else a DataError saying what to pass."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no file at {path}: pass --data PATH to an existing file")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty: pass --data PATH to a file with questions")
    return path


def unique_ids(questions: list[MCQuestion], source: str) -> list[MCQuestion]:
    """Questions must have distinct ids: runs are resumed by id."""
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise DataError(f"{source}: duplicate question id {q.id!r}")
        seen.add(q.id)
    return questions


def read_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a local file, by extension: .jsonl / .json lines, or .csv; a file not in UTF-8 is a DataError."""
    import csv

    try:
        yield from read_csv(path) if path.suffix.lower() == ".csv" else read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason}): save it as UTF-8, or pass another file") from exc
    except csv.Error as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc}): pass --data PATH to a CSV file") from exc


def read_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("FILE record N", row) for each CSV record after the header (N counts records from 1)."""
    import csv

    path = existing_file(path)
    found = False
    with path.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=1):
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            found = True
            yield f"{path} record {n}", row
    if not found:
        raise DataError(f"{path} has no records: pass --data PATH to a file with questions")
