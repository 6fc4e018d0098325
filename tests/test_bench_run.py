"""Run directories, resume, summaries, the comparison table and the CLI, on FakeModel (logic only)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.errors import BenchError
from benchmarks.report import compare_runs, compare_table, list_runs, load_summary, plot, resolve_runs
from benchmarks.run import RunError, RunSpec, read_predictions, run, wilson
from benchmarks.tasks import load_task
from benchmarks.tasks.common import render_mc
from tutor.cli import main
from tutor.errors import InputError
from tutor.models import FakeModel


def _cot_answers(n: int, letter: str = "B") -> list[dict]:
    return [{"reasoning": "because", "answer": letter}] * n


def test_wilson_interval() -> None:
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # the textbook value for 8/10
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"task": "arc_easy"}, "unknown task 'arc_easy': choose one of arc_challenge, "),
        ({"mode": "guess"}, "unknown mode 'guess'"),
        ({"limit": 0}, "--limit must be at least 1, got 0"),
        ({"sample": -1}, "--sample must be at least 1"),
        ({"limit": 5, "sample": 5}, "pass one of them"),
        ({"batch_size": 0}, "--batch-size must be at least 1, got 0"),
    ],
)
def test_run_spec_checks_itself(fields: dict, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        RunSpec(**{"task": "arc_challenge", **fields})


def test_run_spec_is_frozen_and_names_its_directory(data_dir: Path) -> None:
    spec = RunSpec("truthfulqa_mc1", "loglik", model="models/SmolLM2.Q4.gguf", data=str(data_dir), limit=3)
    assert spec.directory == Path("runs/truthfulqa_mc1-loglik-SmolLM2.Q4")
    assert RunSpec("arc_challenge", out="x").directory == Path("x")
    assert [q.id for q in spec.questions()] == [q.id for q in spec.whole_set().questions()[:3]]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.mode = "letter"  # type: ignore[misc]


def test_run_writes_config_predictions_summary(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run(FakeModel(), RunSpec("arc_challenge", "letter", data=data_dir, limit=6, out=out), progress=False)
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "arc_challenge" and config["mode"] == "letter" and config["model"] == "fake"
    assert config["data"].endswith("arc_challenge_validation.jsonl") and len(config["data_sha256"]) == 64
    assert config["seed"] == 0 and "python" in config["versions"] and config["n_questions"] == 6
    rows = read_predictions(out / "predictions.jsonl")
    assert len(rows) == 6 and {"id", "gold", "prediction", "scores", "correct", "parsed"} <= set(rows[0])
    assert json.loads((out / "summary.json").read_text()) == summary
    # FakeModel favours nothing: ties go to "A", and the first 6 validation answers are all "A".
    assert summary["accuracy"] == 1.0 and summary["n"] == 6 and summary["complete"] is True
    assert summary["parse_failures"] == 0 and summary["ci95"] == [round(x, 6) for x in wilson(6, 6)]
    assert summary["answered"] == {"A": 6} and summary["right"] == {"A": 6}


def test_interrupted_run_resumes_without_duplicates(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    spec = RunSpec("arc_challenge", "cot", data=data_dir, limit=5, out=out)
    with pytest.raises(AssertionError, match="no scripted response left"):
        run(FakeModel(_cot_answers(3)), spec, progress=False)
    assert len(read_predictions(out / "predictions.jsonl")) == 3
    assert not (out / "summary.json").exists(), "an interrupted run must not leave a summary"
    assert load_summary(out)["complete"] is False
    with (out / "predictions.jsonl").open("a") as fh:
        fh.write('{"id": "torn')  # a crash in the middle of a write
    second = FakeModel(_cot_answers(2, "C"))
    summary = run(second, spec, progress=False)
    rows = read_predictions(out / "predictions.jsonl")
    assert len(second.calls) == 2, "only the two unanswered questions are asked again"
    assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
    assert [r["prediction"] for r in rows] == ["B", "B", "B", "C", "C"]
    assert summary["complete"] is True and summary["n"] == 5


def test_padded_modes_score_short_prompts_first_and_file_keeps_question_order(data_dir: Path, tmp_path: Path) -> None:
    scored: list[list[str]] = []

    class Recording(FakeModel):
        def _next_token_logprobs(self, texts: list[str]) -> list:
            scored.append(list(texts))
            return super()._next_token_logprobs(texts)

    out = tmp_path / "run"
    run(Recording(), RunSpec("arc_challenge", "letter", data=data_dir, limit=24, batch_size=6, out=out), progress=False)
    sizes = [sorted(len(t) for t in call) for call in scored]
    assert len(sizes) == 4 and all(a[-1] <= b[0] for a, b in itertools.pairwise(sizes)), "batches hold like lengths"
    questions = load_task("arc_challenge", data_dir, limit=24)
    in_file_order = [len(render_mc(q)) for q in questions]
    assert in_file_order != sorted(in_file_order), "the file's own order is not by length (else this proves nothing)"
    rows = read_predictions(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == [q.id for q in questions], "the file ends in the task's question order"
    assert not (out / "predictions.jsonl.tmp").exists()


def test_a_different_run_in_the_same_directory_is_refused(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(FakeModel(), RunSpec("arc_challenge", "letter", data=data_dir, limit=2, out=out), progress=False)
    with pytest.raises(RunError, match=r"holds a different run .*mode"):
        run(FakeModel(), RunSpec("arc_challenge", "loglik", data=data_dir, limit=2, out=out), progress=False)


def test_a_spec_for_another_backend_or_a_broken_config_is_refused(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RunError, match="asks for backend 'transformers' but the model runs on 'fake'"):
        run(FakeModel(), RunSpec("arc_challenge", backend="transformers", data=data_dir, limit=2, out=out))
    assert not out.exists(), "nothing is written for a spec the model does not match"
    out.mkdir()
    (out / "config.json").write_text('{"task": "arc_chall')
    with pytest.raises(RunError, match=r"config.json is not JSON: pass a new --out DIR"):
        run(FakeModel(), RunSpec("arc_challenge", data=data_dir, limit=2, out=out), progress=False)


# A run directory written by the code before RunSpec (df4a4f4: `ta bench run arc_challenge --mode cot --limit 3`
# on FakeModel, interrupted after two answers), with the config.json keys of that version.
OLD_RUN = Path(__file__).parent / "data" / "bench_run_df4a4f4"


def test_a_run_directory_written_before_runspec_resumes(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "old"
    shutil.copytree(OLD_RUN, out)
    old_config = json.loads((out / "config.json").read_text())
    assert "batch_size" not in old_config and len(read_predictions(out / "predictions.jsonl")) == 2
    model = FakeModel(_cot_answers(1, "C"))
    summary = run(model, RunSpec("arc_challenge", "cot", data=data_dir, limit=3, out=out), progress=False)
    assert len(model.calls) == 1, "only the unanswered question is asked"
    assert summary["complete"] is True and summary["n"] == 3
    assert [r["prediction"] for r in read_predictions(out / "predictions.jsonl")] == ["B", "B", "C"]
    new_config = json.loads((out / "config.json").read_text())
    assert set(new_config) - set(old_config) == {"batch_size", "debias"}, "config.json keeps every key it had"
    with pytest.raises(RunError, match="differs in seed"):
        run(FakeModel(), RunSpec("arc_challenge", "cot", data=data_dir, limit=3, seed=1, out=out), progress=False)


def test_mc2_summary_uses_mean_mass(data_dir: Path, tmp_path: Path) -> None:
    spec = RunSpec("truthfulqa_mc2", "loglik", data=data_dir, limit=4, out=tmp_path / "r")
    summary = run(FakeModel(), spec, progress=False)
    rows = read_predictions(tmp_path / "r" / "predictions.jsonl")
    assert all(0 <= r["score"] <= 1 for r in rows) and any(0.001 < r["score"] < 0.999 for r in rows)
    assert summary["accuracy"] == pytest.approx(sum(r["score"] for r in rows) / 4, abs=1e-6)
    assert summary["interval"].startswith("normal") and "accuracy_norm" not in summary
    assert "right" not in summary  # several right letters per question


def test_compare_table_and_plot(data_dir: Path, tmp_path: Path) -> None:
    arc = tmp_path / "arc"
    tqa = tmp_path / "tqa"
    run(FakeModel(), RunSpec("arc_challenge", "letter", data=data_dir, limit=4, out=arc), progress=False)
    freeform = FakeModel(["The answer is B."] + ["no idea"] * 3)
    run(freeform, RunSpec("truthfulqa_mc1", "freeform", data=data_dir, limit=4, out=tqa), progress=False)
    table = compare_table([arc, tqa]).splitlines()
    assert table[0] == "| model | ARC-Challenge | TruthfulQA MC1 | parse failures |"
    assert table[2].startswith("| fake (letter) | 100.0 [51.0, 100.0] (n=4) | - | 0/4 |")
    assert table[3].startswith("| fake (freeform) | - | ") and table[3].endswith(" | 3/4 |")
    png = plot([arc, tqa], tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RunError, match="not a run directory"):
        compare_table([tmp_path])


def test_runs_under_a_folder_are_listed_and_compared_by_name_only(data_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name, task in (("arc", "arc_challenge"), ("tqa", "truthfulqa_mc1")):
        run(FakeModel(), RunSpec(task, "letter", data=data_dir, limit=4, out=runs / name), progress=False)
    os.utime(runs / "arc", (1_000_000, 1_000_000))  # the older run
    (runs / "not-a-run").mkdir()
    (runs / "file.txt").write_text("not a run")
    assert list_runs(runs) == ["tqa", "arc"], "run directories only, newest first"
    assert list_runs(tmp_path / "missing") == []
    assert resolve_runs(["arc"], runs) == [runs / "arc"]
    for bad in (["../etc"], ["/etc"], ["file.txt"], ["not-a-run"], ["arc", str(runs / "tqa")]):
        with pytest.raises(InputError, match="Refresh and pick from the list"):
            resolve_runs(bad, runs)

    table, png = compare_runs(["arc", "tqa"], runs, tmp_path / "out")
    assert "| fake (letter) | 100.0 [51.0, 100.0] (n=4) | " in table and "TruthfulQA MC1" in table
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Path(png).parent.parent == tmp_path / "out"
    assert compare_runs(["arc"], runs, tmp_path / "out")[1] != png, "each comparison draws its own chart"
    with pytest.raises(InputError, match="pick one or more runs first"):
        compare_runs([], runs, tmp_path / "out")
    (runs / "tqa" / "summary.json").write_text("{}")  # a foreign summary: no model, no task
    with pytest.raises(RunError, match="cannot compare these runs"):
        compare_runs(["arc", "tqa"], runs, tmp_path / "out")


@pytest.fixture
def fake_cli_model(monkeypatch: pytest.MonkeyPatch) -> FakeModel:
    fake = FakeModel()
    fake.cli_args = []  # the parsed arguments each load saw

    def load(args):
        fake.cli_args.append(args)
        return fake

    monkeypatch.setattr("benchmarks.cli.load_from_args", load)
    return fake


def test_cli_run_prints_summary_last(data_dir, tmp_path, capsys, fake_cli_model) -> None:
    out = tmp_path / "cli"
    argv = ["bench", "run", "arc_challenge", "--data", str(data_dir), "--limit", "3", "--out", str(out)]
    rc = main([*argv, "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0
    assert fake_cli_model.cli_args[0].threads == 1, "ta bench takes the shared model flags, --threads included"
    last = json.loads(captured.out.strip().splitlines()[-1])
    assert last["n"] == 3 and last["accuracy"] == 1.0 and last["complete"] is True
    assert "arc_challenge/letter" in captured.err  # the progress bar goes to stderr
    assert main(["bench", "compare", str(out), "--plot", str(tmp_path / "c.png")]) == 0
    assert "| fake (letter) | 100.0" in capsys.readouterr().out


def test_cli_warns_of_a_biased_first_n_and_samples(data_dir, tmp_path, capsys, fake_cli_model) -> None:
    argv = ["bench", "run", "arc_challenge", "--data", str(data_dir), "--no-progress"]
    assert main([*argv, "--limit", "30", "--out", str(tmp_path / "first")]) == 0
    assert "ordered by answer" in capsys.readouterr().err
    assert main([*argv, "--sample", "30", "--out", str(tmp_path / "sample")]) == 0
    captured = capsys.readouterr()
    assert "ordered by answer" not in captured.err
    config = json.loads((tmp_path / "sample" / "config.json").read_text())
    assert config["sample"] == 30 and config["limit"] is None and config["n_questions"] == 30
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["answered"] == {"A": 30} and len(summary["right"]) == 4  # FakeModel always says "A"
    assert "note: the model answered A 30 times in 30" in captured.err and "--debias pride" in captured.err
    assert summary["accuracy"] == pytest.approx(summary["right"]["A"] / 30, abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "run", "arc_easy"], "unknown task 'arc_easy'"),
        (["bench", "run", "arc_challenge", "--mode", "guess"], "unknown mode 'guess'"),
        (["bench", "run", "arc_challenge", "--data", "{tmp}/none.jsonl"], "no file at"),
        (["bench", "run", "arc_challenge", "--data", "{tmp}/empty.jsonl"], "empty"),
        (["bench", "run", "arc_challenge", "--data", "{tmp}/bad.jsonl"], r"bad.jsonl row 1: missing answer key"),
        (["bench", "run", "arc_challenge", "--limit", "0"], "--limit must be at least 1"),
        (["bench", "run", "arc_challenge", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["bench", "compare", "{tmp}"], "not a run directory"),
        (["bench", "run", "arc_challenge", "--mode", "loglik", "--debias", "pride"], "use it with --mode letter"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, fake_cli_model, argv, message) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    bad = {"id": "x", "question": "?", "choices": {"text": ["a", "b", "c"], "label": ["A", "B", "C"]}}
    (tmp_path / "bad.jsonl").write_text(json.dumps(bad) + "\n")
    out = tmp_path / "out"
    argv = [a.format(tmp=tmp_path) for a in argv] + (["--out", str(out)] if argv[1] == "run" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert not out.exists(), "bad input must not leave a run directory behind"
    assert not fake_cli_model.calls


def test_every_run_writes_lm_eval_results(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    spec = RunSpec("arc_challenge", "loglik", data=data_dir, sample=5, out=out)
    summary = run(FakeModel(), spec, progress=False)
    doc = json.loads((out / "results.json").read_text())
    assert {
        "results",
        "group_subtasks",
        "configs",
        "versions",
        "n-shot",
        "higher_is_better",
        "n-samples",
        "config",
    } <= set(doc)
    metrics = doc["results"]["arc_challenge"]
    assert metrics["alias"] == "arc_challenge (loglik)"
    assert metrics["acc,none"] == pytest.approx(summary["accuracy"], abs=1e-6)
    assert metrics["acc_norm,none"] == pytest.approx(summary["accuracy_norm"], abs=1e-6)
    p = metrics["acc,none"]
    assert metrics["acc_stderr,none"] == pytest.approx((p * (1 - p) / 4) ** 0.5), "the harness's stderr: n - 1"
    assert doc["n-samples"]["arc_challenge"] == {"original": 299, "effective": 5}
    assert doc["higher_is_better"]["arc_challenge"] == {"acc": True, "acc_norm": True}
    assert doc["configs"]["arc_challenge"]["metadata"]["mode"] == "loglik"
    try:
        from lm_eval.utils import make_table
    except ImportError:
        return  # the harness's own table reader, where the [eval] extra is installed
    assert "arc_challenge (loglik)" in make_table(doc)


def test_cli_debias_flag(data_dir, tmp_path, capsys, fake_cli_model) -> None:
    out = tmp_path / "pride"
    argv = ["bench", "run", "arc_challenge", "--data", str(data_dir), "--sample", "8", "--no-progress"]
    assert main([*argv, "--debias", "pride", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["debias"] == "pride" and summary["answered_raw"] == {"A": 8}, "FakeModel: all ties, read as A"
    assert json.loads((out / "config.json").read_text())["debias"] == "pride"
    assert (out / "debias.json").is_file()
    with pytest.raises(RunError, match="differs in debias"):
        run(FakeModel(), RunSpec("arc_challenge", data=data_dir, sample=8, out=out), progress=False)
