"""The three parse-proof modes on the real embedded model, end to end through runs and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.run import RunSpec, read_predictions, run
from benchmarks.tasks import load_task
from tutor.cli import main


def _check_run(out: Path, summary: dict, n: int) -> list[dict]:
    rows = read_predictions(out / "predictions.jsonl")
    assert summary["n"] == n and summary["complete"] is True and summary["parse_failures"] == 0
    assert len({r["id"] for r in rows}) == n
    for r in rows:
        assert r["parsed"] is True
        assert r["prediction"] in "ABCDE" and len(r["prediction"]) == 1, r
        assert r["correct"] == (r["prediction"] in r["gold"])
    assert 0 <= summary["ci95"][0] <= summary["accuracy"] <= summary["ci95"][1] <= 1
    return rows


@pytest.mark.parametrize("task", ["arc_challenge", "truthfulqa_mc1"])
def test_letter_mode(llama_model, data_dir: Path, tmp_path: Path, task: str) -> None:
    summary = run(llama_model, RunSpec(task, "letter", data=data_dir, limit=6, out=tmp_path), progress=False)
    rows = _check_run(tmp_path, summary, 6)
    questions = {q.id: q for q in load_task(task, data_dir, limit=6)}
    for r in rows:
        assert set(r["scores"]) == set(questions[r["id"]].letters)
        assert abs(sum(r["scores"].values()) - 1) < 1e-4
        assert r["prediction"] == max(r["scores"], key=r["scores"].get)


@pytest.mark.parametrize("backend", ["llama_model", "hf_model"])
def test_letter_raw_mode(backend: str, request, data_dir: Path, tmp_path: Path) -> None:
    model = request.getfixturevalue(backend)
    summary = run(model, RunSpec("arc_challenge", "letter_raw", data=data_dir, limit=6, out=tmp_path), progress=False)
    questions = {q.id: q for q in load_task("arc_challenge", data_dir, limit=6)}
    for r in _check_run(tmp_path, summary, 6):
        assert set(r["scores"]) == set(questions[r["id"]].letters), "scores keyed by bare letters"
        assert abs(sum(r["scores"].values()) - 1) < 1e-4
        assert r["prediction"] == max(r["scores"], key=r["scores"].get)


def test_loglik_mode(llama_model, data_dir: Path, tmp_path: Path) -> None:
    summary = run(llama_model, RunSpec("arc_challenge", "loglik", data=data_dir, limit=6, out=tmp_path), progress=False)
    rows = _check_run(tmp_path, summary, 6)
    for r in rows:
        assert all(v < 0 for v in r["scores"].values()), "log-likelihoods of whole answers are negative"
        assert r["extra"]["prediction_norm"] in r["scores"]
    assert 0 <= summary["accuracy_norm"] <= 1


def test_loglik_agrees_across_backends(llama_model, hf_model, data_dir: Path) -> None:
    """Same model, two runtimes (Q4_1 GGUF and its dequantized checkpoint): near-identical scores."""
    from benchmarks.modes import loglik

    questions = load_task("openbookqa", data_dir, limit=3)
    a, b = loglik(llama_model, questions), loglik(hf_model, questions)
    for x, y in zip(a, b, strict=True):
        for letter in x.scores:
            assert x.scores[letter] == pytest.approx(y.scores[letter], abs=0.5)


@pytest.mark.slow  # 138 s in the default tier: the cot schema is exercised in test_bench_modes on a fake
def test_cot_mode(llama_model, data_dir: Path, tmp_path: Path) -> None:
    summary = run(llama_model, RunSpec("arc_challenge", "cot", data=data_dir, limit=5, out=tmp_path), progress=False)
    rows = _check_run(tmp_path, summary, 5)
    assert all(r["extra"]["reasoning"].strip() for r in rows)


def test_cli_on_the_real_model(llama_model, data_dir, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("benchmarks.cli.load_from_args", lambda args: llama_model)
    out = tmp_path / "run"
    argv = ["bench", "run", "openbookqa", "--data", str(data_dir), "--limit", "5", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    _check_run(out, summary, 5)
    assert summary["questions_per_second"] > 0
    assert main(argv) == 0, "rerunning a finished run resumes with nothing left to ask"
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 5
    assert len(read_predictions(out / "predictions.jsonl")) == 5
