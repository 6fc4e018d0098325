"""The benchmark task readers (ARC, OpenBookQA, TruthfulQA MC1/MC2), fed generated files: questions or a DataError.

Rows are made the way real files go wrong: a field missing or of another type, labels that are digits in another
script ("²" passes ``str.isdigit()`` and fails ``int()``), answer keys that name no label, answers that are
numbers in the hub's lists, NaN, nesting deep enough to exhaust the JSON parser's recursion, bytes that are not
UTF-8, CSV with ragged records. A file either loads, every question well formed, or raises
:class:`~benchmarks.tasks.common.DataError` (a TutorError) naming the file: never another exception.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from benchmarks.tasks import TASKS, load_task
from benchmarks.tasks.common import DataError, MCQuestion, render_mc, render_mc_raw
from tests.fuzzing import NASTY, budget, clear_error_or_works, json_line, json_values, mutate, nasty_text, scratch

WORK = scratch("tasks-")


labels = st.sampled_from(["A", "B", "C", "D", "E", "a", " B", "1", "2", "3", "4", "²", "١", "𝟙", "0", "27", ""])
texts = st.sampled_from(["the cell", "a cloud", " ", "photosynthesis", "😀", "\x00", "Ⅳ", "4"]) | nasty_text
prose = st.text(min_size=1, max_size=30).filter(str.strip) | st.sampled_from(["Which?", "😀 ש \u202e", "a\x00b"])


@st.composite
def mc_rows(draw: st.DrawFn, task: str) -> dict:
    """An ARC row, or an OpenBookQA row in the hub's flat shape or AI2's nested one; one thing in it broken or not."""
    n = draw(st.integers(3, 5))
    choice_labels = draw(st.just(list("ABCDE"[:n])) | st.just([str(i) for i in range(1, n + 1)]))
    choice_texts = draw(st.lists(prose, min_size=n, max_size=n))
    key = draw(st.sampled_from(choice_labels) | labels)
    row: dict = {"id": draw(st.text(min_size=1, max_size=8)), "answerKey": key}
    if task == "arc_challenge" or draw(st.booleans()):  # the hub's shape
        row["question" if task == "arc_challenge" else "question_stem"] = draw(prose)
        row["choices"] = {"text": choice_texts, "label": choice_labels}
    else:  # AI2's OpenBookQA JSONL
        options = [{"text": t, "label": lab} for t, lab in zip(choice_texts, choice_labels, strict=True)]
        row["question"] = {"stem": draw(prose), "choices": options}
    return mutate(draw, row, json_values | labels | texts)


answers_field = st.lists(prose, max_size=4).map("; ".join) | st.lists(prose, max_size=4)


@st.composite
def tqa_rows(draw: st.DrawFn) -> dict:
    """A TruthfulQA row: CSV column names with "; "-separated strings, or the hub's snake case with lists."""
    hub = draw(st.booleans())
    names = ["Question", "Best Answer", "Correct Answers", "Incorrect Answers"]
    values = [draw(prose), draw(prose), draw(answers_field), draw(answers_field)]
    return mutate(
        draw,
        {(n.lower().replace(" ", "_") if hub else n): v for n, v in zip(names, values, strict=True)},
        json_values | texts,
    )


def write(name: str, data: bytes) -> Path:
    """``data`` in a fresh file named ``name`` (one directory for the whole session)."""
    path = WORK / name
    path.write_bytes(data)
    return path


def jsonl(rows: list) -> bytes:
    return "\n".join(json_line(row) for row in rows).encode("utf-8", "surrogatepass")


def as_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row)) or ["Question"]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: v if isinstance(v, str) else str(v) for k, v in row.items()})
    return out.getvalue().encode("utf-8", "surrogatepass")


def check_loaded(name: str, path: Path) -> None:
    """Load ``path`` as task ``name``: well-formed questions, or a DataError (a TutorError) with a message."""
    questions = clear_error_or_works(lambda: load_task(name, path))
    if currently_in_test_context():  # --hypothesis-show-statistics: both outcomes are exercised
        event("loaded" if questions else "DataError")
    if questions is None:
        with pytest.raises(DataError):
            load_task(name, path)
        return
    assert questions and len({q.id for q in questions}) == len(questions)
    for q in questions:
        check_question(q)


def check_question(q: MCQuestion) -> None:
    """What every mode relies on: text, distinct letters for non-blank choices, a valid key, a renderable prompt."""
    assert isinstance(q.id, str) and q.id and isinstance(q.question, str) and q.question.strip()
    assert 2 <= len(q.choices) <= 26 and all(isinstance(c, str) and c.strip() for c in q.choices)
    assert q.gold and all(0 <= g < len(q.choices) for g in q.gold)
    assert render_mc(q).startswith(q.question) and render_mc_raw(q).endswith("Answer:")
    # a prompt goes to a tokenizer as UTF-8: a lone surrogate (JSON's "\ud800") would fail there, not here
    for text in (q.question, *q.choices, q.context):
        text.encode("utf-8")


# What fuzzing found (each the minimal example, shrunk): a superscript digit label ("²".isdigit() but int("²")
# fails), a number in the hub's answer lists (int has no .strip()), nesting deeper than the JSON parser's recursion
# limit, and a lone surrogate (JSON's "\ud800") in a question, which a tokenizer cannot encode.
ARC_ROW = {"id": "q1", "question": "Which?", "choices": {"text": ["a", "b", "c"], "label": ["A", "B", "C"]}}


@budget(80)
@given(st.data())
def test_mc_files_load_or_say_which_row(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["arc_challenge", "openbookqa"]))
    check_mc_file(name, data.draw(st.lists(mc_rows(name), min_size=1, max_size=3)))


def check_mc_file(name: str, rows: list) -> None:
    check_loaded(name, write(f"{name}.jsonl", jsonl(rows)))


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("arc_challenge", {**ARC_ROW, "choices": {"text": ["a", "b", "c"], "label": ["²", "B", "C"]}, "answerKey": 3}),
        ("arc_challenge", {**ARC_ROW, "answerKey": "²"}),
        ("openbookqa", {**ARC_ROW, "answerKey": "A", "question_stem": "\ud800?", "question": None}),
        ("arc_challenge", {**ARC_ROW, "answerKey": "A", "question": "Why\ud800?"}),
        (
            "arc_challenge",
            {**ARC_ROW, "answerKey": "A", "choices": {"text": [None, {}, "c"], "label": ["A", "B", "C"]}},
        ),
    ],
)
def test_mc_regressions(name: str, row: dict) -> None:
    check_mc_file(name, [row])


@budget(80)
@given(
    st.sampled_from(["truthfulqa_mc1", "truthfulqa_mc2"]), st.lists(tqa_rows(), min_size=1, max_size=3), st.booleans()
)
@example("truthfulqa_mc1", [{"question": "Q?", "best_answer": "yes", "incorrect_answers": [1, "no"]}], False)
@example("truthfulqa_mc2", [{"Question": "Q\ud800?", "Best Answer": "y", "Incorrect Answers": "n"}], True)
@example("truthfulqa_mc1", [{"Question": "Q?", "Best Answer": "y", "Incorrect Answers": "; ".join("n" * 30)}], True)
def test_truthfulqa_files_load_or_say_which_row(name: str, rows: list, csv_file: bool) -> None:
    path = write(f"{name}.csv", as_csv(rows)) if csv_file else write(f"{name}.jsonl", jsonl(rows))
    check_loaded(name, path)


lines = st.sampled_from(["", "{}", "[]", "null", "{", "[" * 3000, '{"a": NaN}', "\x00", "\ufeff{}"])
lines |= st.text(max_size=40) | json_values.map(json_line)
files = st.lists(lines, max_size=4).map(lambda xs: "\n".join(xs).encode("utf-8", "surrogatepass"))


@budget(100)
@given(
    st.sampled_from(sorted(TASKS)),
    st.sampled_from([".jsonl", ".json", ".csv", ".txt"]),
    files | st.binary(max_size=200),
)
@example("arc_challenge", ".jsonl", b"[" * 100_000)
@example("openbookqa", ".jsonl", b'{"id": 1}\n' + b"\xff\xfe")
@example("truthfulqa_mc1", ".csv", b"Question\n" + b"x" * 200_000)
@example("truthfulqa_mc1", ".csv", b'Question,Best Answer\n"a\x00b",c\n')
def test_any_bytes_load_or_raise_a_data_error(name: str, suffix: str, data: bytes) -> None:
    check_loaded(name, write(f"any{suffix}", data))


@budget(50)
@given(st.sampled_from(sorted(TASKS)), st.sampled_from(NASTY) | st.text(max_size=30))
def test_any_path_or_name_is_a_data_error(name: str, where: str) -> None:
    """A path that is not a file (missing, a folder without the task file, odd characters) is one clear error."""
    clear_error_or_works(lambda: load_task(name, WORK / "missing" / where))
    clear_error_or_works(lambda: load_task(where, WORK))
