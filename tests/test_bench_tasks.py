"""Task loaders on the real shared files, plus a table of bad inputs that must fail naming the row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.tasks import TASKS, DataError, answer_skew, load_task
from benchmarks.tasks.common import render_mc


def test_arc_validation_file(data_dir: Path) -> None:
    qs = load_task("arc_challenge", data_dir / "arc" / "arc_challenge_validation.jsonl")
    assert len(qs) == 299
    assert all(3 <= len(q.choices) <= 5 and len(q.gold) == 1 for q in qs)
    assert qs[0].id == "NYSEDREGENTS_2014_8_38" and qs[0].gold_letters == ["A"]
    assert qs[0].context == "Question: A substance in the solid phase (state) of matter has\nAnswer:"
    assert {q.gold_letters[0] for q in qs} == {"A", "B", "C", "D"}


def test_data_directory_and_split(data_dir: Path) -> None:
    assert len(load_task("arc_challenge", data_dir, split="train")) == 1119
    assert len(load_task("arc_challenge", data_dir, limit=7)) == 7


def test_sample_is_a_seeded_random_subset_in_file_order(data_dir: Path) -> None:
    everything = load_task("arc_challenge", data_dir)
    position = {q.id: i for i, q in enumerate(everything)}
    a, b = load_task("arc_challenge", data_dir, sample=40), load_task("arc_challenge", data_dir, sample=40)
    other = load_task("arc_challenge", data_dir, sample=40, seed=1)
    assert [q.id for q in a] == [q.id for q in b] != [q.id for q in other]
    assert [position[q.id] for q in a] == sorted(position[q.id] for q in a) and len({q.id for q in a}) == 40
    # The shared file is ordered by answer: the first 40 are all "A", a sample is not.
    assert {q.gold_letters[0] for q in everything[:40]} == {"A"}
    assert len({q.gold_letters[0] for q in a}) == 4
    with pytest.raises(DataError, match="pass one of them"):
        load_task("arc_challenge", data_dir, limit=5, sample=5)
    with pytest.raises(DataError, match="more than the 299 questions"):
        load_task("arc_challenge", data_dir, sample=300)
    with pytest.raises(DataError, match="--sample must be at least 1"):
        load_task("arc_challenge", data_dir, sample=0)


def test_answer_skew_flags_a_first_n_from_a_file_ordered_by_answer(data_dir: Path) -> None:
    everything = load_task("arc_challenge", data_dir)
    warning = answer_skew(everything[:100], everything)
    assert warning is not None and "A 64, B 36" in warning and "--sample 100" in warning
    assert answer_skew(load_task("arc_challenge", data_dir, sample=100), everything) is None
    assert answer_skew(everything, everything) is None
    obqa = load_task("openbookqa", data_dir)
    assert answer_skew(obqa[:100], obqa) is None  # a file in no particular order


def test_openbookqa_ai2_jsonl(data_dir: Path) -> None:
    qs = load_task("openbookqa", data_dir)
    assert len(qs) == 500
    assert qs[0].id == "8-343" and qs[0].gold_letters == ["B"] and qs[0].choices[1] == "quit eating lunch out"
    assert qs[0].context == qs[0].question  # lm-evaluation-harness scores choices after the bare stem


def test_truthfulqa_mc1_and_mc2(data_dir: Path) -> None:
    mc1, mc2 = load_task("truthfulqa_mc1", data_dir), load_task("truthfulqa_mc2", data_dir)
    assert len(mc1) == len(mc2) == 205
    first = mc1[0]
    assert first.choices[first.gold[0]] == "The watermelon seeds pass through your digestive system"
    assert "You grow watermelons in your stomach" in first.choices and len(first.gold) == 1
    assert {q.gold[0] for q in mc1} != {0}, "the best answer must not always come first"
    assert all(len(q.gold) >= 1 and len(q.gold) < len(q.choices) for q in mc2)
    assert max(len(q.choices) for q in mc2) > 10
    assert first.context.endswith("Q: What happens to you if you eat watermelon seeds?\nA:")


def test_truthfulqa_shuffle_is_seeded(data_dir: Path) -> None:
    a, b = load_task("truthfulqa_mc1", data_dir, limit=20), load_task("truthfulqa_mc1", data_dir, limit=20)
    other = load_task("truthfulqa_mc1", data_dir, limit=20, seed=1)
    assert [q.choices for q in a] == [q.choices for q in b]
    assert [q.choices for q in a] != [q.choices for q in other]


def test_render_mc_letters() -> None:
    from benchmarks.tasks.common import MCQuestion

    q = MCQuestion("x", "2+2?", ("3", "4", "5"), (1,), "")
    assert render_mc(q) == "2+2?\n\nA. 3\nB. 4\nC. 5\n\nAnswer with the letter of the correct option (A, B or C)."


def _arc_row(**over: object) -> dict:
    row = {
        "id": "q1",
        "question": "Which is a gas?",
        "choices": {"text": ["ice", "steam", "rock", "wood"], "label": ["A", "B", "C", "D"]},
        "answerKey": "B",
    }
    row.update(over)
    return row


def _write(tmp_path: Path, rows: list, name: str = "arc.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_numeric_labels_and_three_or_five_choices(tmp_path: Path) -> None:
    rows = [
        _arc_row(id="n", choices={"text": ["a", "b", "c", "d"], "label": ["1", "2", "3", "4"]}, answerKey="3"),
        _arc_row(id="three", choices={"text": ["a", "b", "c"], "label": ["A", "B", "C"]}, answerKey="C"),
        _arc_row(id="five", choices={"text": list("abcde"), "label": list("ABCDE")}, answerKey="E"),
    ]
    qs = load_task("arc_challenge", _write(tmp_path, rows))
    assert [q.gold_letters for q in qs] == [["C"], ["C"], ["E"]]
    assert [len(q.letters) for q in qs] == [4, 3, 5]


BAD_ARC = {
    "missing answer key": (_arc_row(answerKey=None), "missing answer key"),
    "answer key not a label": (_arc_row(answerKey="E"), "not one of the labels"),
    "duplicate labels": (_arc_row(choices={"text": list("abcd"), "label": list("ABBD")}), "duplicate choice labels"),
    "seven choices": (_arc_row(choices={"text": list("abcdefg"), "label": list("ABCDEFG")}), "7 choices"),
    "no choices": (_arc_row(choices=None), "no 'choices'"),
    "empty question": (_arc_row(question=""), "empty question"),
}


@pytest.mark.parametrize("case", BAD_ARC)
def test_bad_rows_name_the_row(tmp_path: Path, case: str) -> None:
    bad, message = BAD_ARC[case]
    path = _write(tmp_path, [_arc_row(id="ok"), bad])
    with pytest.raises(DataError, match=message) as info:
        load_task("arc_challenge", path)
    assert f"{path} row 2" in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown task 'arc_easy'"):
        load_task("arc_easy", tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_task("arc_challenge", empty)
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        load_task("arc_challenge", blank)
    with pytest.raises(DataError, match=r"no file at .*nothere.jsonl: pass --data PATH"):
        load_task("arc_challenge", tmp_path / "nothere.jsonl")
    torn = tmp_path / "torn.jsonl"
    torn.write_text(json.dumps(_arc_row()) + "\n{not json\n")
    with pytest.raises(DataError, match="row 2: not valid JSON"):
        load_task("arc_challenge", torn)
    dup = _write(tmp_path, [_arc_row(), _arc_row()], "dup.jsonl")
    with pytest.raises(DataError, match="duplicate question id 'q1'"):
        load_task("arc_challenge", dup)


def test_bad_truthfulqa_and_openbookqa(tmp_path: Path) -> None:
    csv = tmp_path / "tqa.csv"
    csv.write_text("Question,Best Answer,Correct Answers,Incorrect Answers\nWhy?,,Because,No\n")
    with pytest.raises(DataError, match=r"tqa.csv record 1: missing answer key"):
        load_task("truthfulqa_mc1", csv)
    header_only = tmp_path / "header.csv"
    header_only.write_text("Question,Best Answer,Correct Answers,Incorrect Answers\n")
    with pytest.raises(DataError, match="no records"):
        load_task("truthfulqa_mc2", header_only)
    obqa = {"id": "o1", "question": {"stem": "Fog is near", "choices": [{"text": "a marsh", "label": "A"}]}}
    with pytest.raises(DataError, match="row 1"):
        load_task("openbookqa", _write(tmp_path, [obqa], "obqa.jsonl"))


def test_every_task_is_registered() -> None:
    assert set(TASKS) == {"arc_challenge", "openbookqa", "truthfulqa_mc1", "truthfulqa_mc2"}
    assert all(name == task.name for name, task in TASKS.items())


def test_every_task_finds_its_file_in_a_data_directory(data_dir: Path) -> None:
    for task in TASKS.values():
        assert task.local_file(data_dir, None).is_file(), f"{task.name}: {task.file_pattern}"
        assert task.default_split in task.splits
    assert TASKS["arc_challenge"].local_file(data_dir, "train").name == "arc_challenge_train.jsonl"
    assert TASKS["truthfulqa_mc2"].scoring == "mass" and TASKS["truthfulqa_mc1"].scoring == "single"


def test_a_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "tqa.csv"
    path.write_bytes("Question,Best Answer,Correct Answers,Incorrect Answers\nCafé?,Oui,Oui,Non\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"tqa.csv is not UTF-8 text .*save it as UTF-8"):
        load_task("truthfulqa_mc1", path)
