"""The shipped experiment, end to end on the real embedded model: training, every cell, the report, a resume.

Default tier: the smoke version (2 questions a task, 2 training steps on 12 conversations; about a minute on an
idle machine, 6 minutes at load 10 on 2 cores). Slow tier: a reduced version (20 questions a task, 5 training steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutor.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "original_table.yaml"

pytestmark = pytest.mark.real_model  # the suite loads the embedded model itself: counted in the run's summary


def _run(out: Path, data_dir: Path, *flags: str) -> int:
    argv = ["bench", "suite", str(EXPERIMENT), "--data", str(data_dir), "--out", str(out), "--threads", "1"]
    return main([*argv, "--no-progress", *flags])


def _check(out: Path, n: int, steps: int) -> dict:
    results = json.loads((out / "results.json").read_text())
    assert len(results["cells"]) == 12, "2 models x 3 tasks x 2 modes"
    for cell in results["cells"]:
        summary = cell["summary"]
        assert summary["complete"] and summary["n"] == n and summary["parse_failures"] == 0, cell["cell"]
        assert cell["lm_eval"]["results"][cell["task"]]["acc,none"] == pytest.approx(summary["accuracy"], abs=1e-6)
    assert results["training"]["finetuned"]["steps"] == steps
    adapter = out / "train" / "finetuned" / "adapter" / "adapter_config.json"
    assert json.loads(adapter.read_text())["base_model_name_or_path"] == "SmolLM2-135M-Instruct"
    table = (out / "table.md").read_text()
    for row in ("baseline (letter)", "baseline (loglik)", "finetuned (letter)", "finetuned (loglik)"):
        assert f"| {row} | " in table
    assert len(results["comparisons"]) == 6 and "| arc_challenge | letter | finetuned vs baseline |" in table
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return results


def test_the_shipped_experiment_smoke(tmp_path, data_dir, monkeypatch, capsys) -> None:
    monkeypatch.chdir(ROOT)  # the experiment names its recipe from the repository root
    out = tmp_path / "smoke"
    assert _run(out, data_dir, "--smoke") == 0
    first = _check(out, n=2, steps=2)
    assert "suite directory:" in capsys.readouterr().out

    def no_load(*args):
        raise AssertionError("a finished suite loads no model")

    monkeypatch.setattr("benchmarks.suite.load", no_load)
    monkeypatch.setattr("benchmarks.suite.train", no_load)
    assert _run(out, data_dir, "--smoke") == 0, "run again: every cell is done, nothing is trained or asked"
    again = _check(out, n=2, steps=2)
    assert [c["summary"]["accuracy"] for c in again["cells"]] == [c["summary"]["accuracy"] for c in first["cells"]]


@pytest.mark.slow
def test_the_shipped_experiment_reduced(tmp_path, data_dir, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "reduced"
    assert _run(out, data_dir, "--questions", "20", "--max-steps", "5") == 0
    _check(out, n=20, steps=5)
