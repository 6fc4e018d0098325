"""scripts/debias_eval.py on a scripted model: the same run's before and after, paired, for one-answer and MC2 tasks."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import ClassVar

import pytest

from tutor.models.fake import FakeModel

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("debias_eval", ROOT / "scripts" / "debias_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PrefersA(FakeModel):
    """Answers "A" far above every other letter, whatever it holds: a pure position bias, no knowledge."""

    LOGITS: ClassVar[dict[str, float]] = {"A": 3.0, "B": 1.0}

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list:
        return [{ord(x): self.LOGITS.get(x, 0.0) for x in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"} for _ in prompts]


@pytest.mark.parametrize("task", ["arc_challenge", "truthfulqa_mc2"])
def test_debias_eval_pairs_the_same_runs_before_and_after(task: str, data_dir: Path, tmp_path: Path) -> None:
    script = _script()
    args = argparse.Namespace(mode="letter", data=data_dir, sample=12)
    model = PrefersA()
    results = [script.measure(model, task, method, args, tmp_path) for method in ("none", "pride")]
    none, pride = results
    assert none["answered"] == {"A": 12} and pride["answered_raw"] == {"A": 12}, "undebiased: always A"
    assert pride["accuracy_raw"] == pytest.approx(none["accuracy"], abs=1e-6), "the same run's before is the plain run"
    stats = pride["vs_undebiased"]
    assert stats["n"] == 12 and stats["diff"] == pytest.approx(pride["accuracy"] - pride["accuracy_raw"], abs=1e-5)
    assert sum(none["right"].values()) == sum(len(r) for r in _golds(tmp_path / f"{task}-none"))
    text = script.table(results)
    if task == "truthfulqa_mc2":  # several right letters a question: mass, a paired normal test, and the top answer
        assert stats["test"] == "paired normal" and "top1_vs_undebiased" in pride
        assert "| truthfulqa_mc2 | pride | " in text.split("top answer a right one")[1]
    else:
        assert stats["test"] == "McNemar exact" and "top answer" not in text


def _golds(run_dir: Path) -> list[list[str]]:
    from benchmarks.run import read_predictions

    return [r["gold"] for r in read_predictions(run_dir / "predictions.jsonl")]
