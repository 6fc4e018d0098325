"""The parity script's bookkeeping (the lm-eval run itself needs the [eval] extra: see README)."""

from __future__ import annotations

import pytest

from benchmarks.parity_lmeval import report, tokens_read
from benchmarks.tasks.common import MCQuestion, render_mc, render_mc_raw
from tutor.models import FakeModel

Q1 = MCQuestion("q1", "Which is a gas?", ("ice", "steam"), (1,), "Question: Which is a gas?\nAnswer:")
Q2 = MCQuestion("q2", "Hot?", ("yes", "no", "maybe"), (0,), "Question: Hot?\nAnswer:")


def test_tokens_read_counts_the_work_of_each_method() -> None:
    # FakeModel has one token per character, so every count is a length in characters.
    counts = tokens_read(FakeModel(), [Q1, Q2])
    ctx1, ctx2 = len(Q1.context), len(Q2.context)
    # lm-eval: context + " choice" once per choice, less the last token of each.
    lmeval = sum(ctx1 + 1 + len(c) - 1 for c in Q1.choices) + sum(ctx2 + 1 + len(c) - 1 for c in Q2.choices)
    assert counts["lm-eval"] == pytest.approx(lmeval / 2)
    # loglik: the context once, then each " choice" less its last token.
    loglik = ctx1 + sum(len(c) for c in Q1.choices) + ctx2 + sum(len(c) for c in Q2.choices)
    assert counts["loglik"] == pytest.approx(loglik / 2)
    # letter_raw: each prompt once, less the prefix both share ("Question: ").
    raw = [render_mc_raw(q) for q in (Q1, Q2)]
    assert counts["letter_raw"] == pytest.approx(sum(map(len, raw)) / 2 - len("Question: "))
    assert counts["letter"] > counts["letter_raw"], "the chat template adds markup to every prompt"


def test_report_shows_ratio_agreement_and_tokens() -> None:
    ref = {"method": "lm-eval", "n": 2, "seconds": 2.0, "acc": 0.5, "acc_norm": 0.5, "lls": {"q1": [-1.0, -2.0]}}
    ours = {
        "method": "ours", "n": 2, "seconds": 0.5, "acc": 0.5, "acc_norm": 0.5,
        "lls": {"q1": [-1.00004, -2.0]}, "tokens_per_question": 49.85,
    }  # fmt: skip
    table = report([ref, ours]).splitlines()
    assert table[0].endswith("| tokens/q |")
    assert table[3] == "| ours | 2 | 50.00 | 50.00 | 4.00 | 4.00x | 0.0000 | 100.0% | 49.9 |"


def _gpu_script():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "gpu_letter_vs_lmeval.py"
    spec = importlib.util.spec_from_file_location("gpu_letter_vs_lmeval", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_gpu_scripts_letter_gives_our_models_numbers(data_dir) -> None:
    """The GPU script's device-side `letter` is ours: the same log-probabilities as TransformersModel.choose."""
    from benchmarks.tasks import load_task
    from tutor.models.transformers import TransformersModel

    gpu = _gpu_script()
    questions = load_task("arc_challenge", data_dir, sample=12)
    tok = gpu.make_tokenizer(None, [q.question + " " + " ".join(q.choices) for q in questions])
    model = gpu.make_model(gpu.TINY, "cpu", "float32")
    for chat in (True, False):
        script = gpu.run_letter(model, tok, questions, chat, call_batch=8, forward_batch=3)
        ours = TransformersModel(model, tok, name="tiny")
        space = "" if chat else " "
        prompts = [render_mc(q) if chat else render_mc_raw(q) for q in questions]
        picked = ours.choose(prompts, [[space + x for x in q.letters] for q in questions], chat=chat)
        for got, choice, q in zip(script, picked, questions, strict=True):
            assert got == pytest.approx([choice.logprobs[space + x] for x in q.letters], abs=1e-4)
    assert gpu.common_prefix([[1, 2, 3], [1, 2, 4]]) == 2 and gpu.common_prefix([[1, 2], [1, 2]]) == 1


def test_the_gpu_scripts_copies_render_what_the_project_renders(data_dir) -> None:
    """The script reads ARC and renders prompts with copies (no project dependencies on the GPU): the same text."""
    from benchmarks.tasks import load_task

    gpu = _gpu_script()
    path = data_dir / "arc" / "arc_challenge_validation.jsonl"
    theirs, ours = gpu.read_arc(path), load_task("arc_challenge", path)
    assert len(theirs) == len(ours) == 299
    for a, b in zip(theirs, ours, strict=True):
        assert (a.id, a.question, a.choices, a.gold, a.context) == (b.id, b.question, b.choices, b.gold, b.context)
        assert gpu.render_mc(a) == render_mc(b) and gpu.render_mc_raw(a) == render_mc_raw(b)
    assert all(q.choices == tuple(q.choices) for q in gpu.load_questions(None, None, 5)), "synthetic when no file"


def test_the_gpu_script_runs_on_cpu(tmp_path, data_dir) -> None:
    """Its whole path on a tiny model (the lm-eval rows need the harness: skipped here unless installed)."""
    gpu = _gpu_script()
    out = tmp_path / "gpu.json"
    argv = [
        "--tiny",
        "--device",
        "cpu",
        "--n",
        "10",
        "--data",
        str(data_dir / "arc" / "arc_challenge_validation.jsonl"),
    ]
    assert gpu.main([*argv, "--letter-batch", "4", "--lmeval-batch", "4", "--out", str(out)]) == 0
    doc = __import__("json").loads(out.read_text())
    kinds = [r["kind"] for r in doc["results"]]
    assert kinds[-2:] == ["letter", "letter_raw"] and doc["n"] == 10 and doc["device"] == "cpu"
    assert all(r["questions_per_second"] > 0 for r in doc["results"])
