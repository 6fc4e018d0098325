"""Training: a 2-step LoRA run of each path on the embedded model; its adapter loads and changes the output.

Runs are tiny (12 short conversations, 2 steps) but real: the real model, the real trainer, conversations in
FineTome's ShareGPT schema written for the tests (tests/data/instruct_tiny.jsonl), so no test here needs the shared
data directory (the 30-step run on the shared ShareGPT sample is in test_finetune_export's slow tier).
The unsloth path runs in a subprocess because importing unsloth patches transformers process-wide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.config import CONFIGS

RECIPE = CONFIGS / "smollm2-135m-lora-cpu.yaml"
PROMPT = "Name three primary colors."
# A high learning rate so that two steps visibly move the greedy output of a 135M model.
TINY = ["--max-steps", "2", "--quiet"] + [
    arg
    for kv in (
        "max_seq_len=256",
        "max_examples=12",
        "eval_size=2",
        "batch_size=2",
        "learning_rate=1e-2",
        "warmup_steps=0",
        "eval_steps=0",
    )
    for arg in ("--set", kv)
]
RUN_FILES = {"adapter", "recipe.yaml", "metrics.jsonl", "loss.png", "README.md", "run.json"}


@pytest.fixture(scope="module")
def trl_run(tmp_path_factory: pytest.TempPathFactory, instruct_tiny: Path) -> Path:
    from tutor.cli import main

    out = tmp_path_factory.mktemp("trl") / "run"
    assert main(["finetune", str(RECIPE), "--data", str(instruct_tiny), "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def unsloth_run(tmp_path_factory: pytest.TempPathFactory, instruct_tiny: Path) -> Path:
    pytest.importorskip("unsloth", reason="the unsloth path needs the [gpu] extra")
    out = tmp_path_factory.mktemp("unsloth") / "run"
    command = [
        sys.executable,
        "-m",
        "tutor.cli",
        "finetune",
        str(RECIPE),
        "--data",
        str(instruct_tiny),
        "--out",
        str(out),
        "--set",
        "path=unsloth",
        *TINY,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _check_run(run: Path, path: str) -> None:
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    assert not run.with_name(run.name + ".partial").exists()
    summary = json.loads((run / "run.json").read_text())
    assert summary["path"] == path and summary["steps"] == 2 and summary["counts"]["train"] == 10
    assert summary["eval_loss_before"] > 0 and summary["eval_loss_after"] > 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert sum("eval_loss" in r for r in records) >= 2  # before and after training (unsloth adds one at the end)
    config = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "SmolLM2-135M-Instruct" and config["r"] == 16
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (run / "README.md").read_text()
    assert "SmolLM2-135M-Instruct" in card and "instruct_tiny.jsonl" in card and path in card


def _changes_output(run: Path, hf_model) -> None:
    from tutor.models import load_model

    tuned = load_model(run / "adapter")
    assert tuned.backend == "transformers" and "adapter" in tuned.name
    before = hf_model.generate(PROMPT, max_tokens=24)
    after = tuned.generate(PROMPT, max_tokens=24)
    assert before and after and before != after, (before, after)


@pytest.mark.real_model  # trains the embedded model
def test_trl_run_directory_is_complete(trl_run: Path):
    _check_run(trl_run, "trl")


def test_trl_adapter_loads_through_the_registry_and_changes_output(trl_run: Path, hf_model):
    _changes_output(trl_run, hf_model)


@pytest.mark.real_model  # trains the embedded model
def test_unsloth_run_directory_is_complete(unsloth_run: Path):
    _check_run(unsloth_run, "unsloth")


def test_unsloth_adapter_loads_through_the_registry_and_changes_output(unsloth_run: Path, hf_model):
    _changes_output(unsloth_run, hf_model)


def test_bad_data_leaves_no_run_directory(tmp_path: Path, capsys):
    from tutor.cli import main

    bad = tmp_path / "notes.jsonl"
    bad.write_text(json.dumps({"text": "no chat here"}) + "\n")
    out = tmp_path / "run"
    assert main(["finetune", str(RECIPE), "--data", str(bad), "--out", str(out), *TINY]) == 2
    assert "in no known format" in capsys.readouterr().err
    assert main(["finetune", str(RECIPE), "--data", str(tmp_path / "nope.jsonl"), "--out", str(out), *TINY]) == 2
    assert "pass --data PATH" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.jsonl"]


def test_run_directory_mistakes_are_one_line_errors(tmp_path: Path, instruct_tiny: Path, capsys):
    from finetune.config import load_recipe
    from finetune.train import TrainError, train
    from tutor.cli import main

    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(TrainError, match="already exists"):
        train(load_recipe(RECIPE), out=taken)
    fresh = tmp_path / "fresh"
    assert main(["finetune", str(RECIPE), "--data", str(instruct_tiny), "--out", str(fresh), "--resume", *TINY]) == 2
    assert "resume: no checkpoint under" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_an_existing_run_is_never_overwritten(trl_run: Path, instruct_tiny: Path, capsys):
    from tutor.cli import main

    before = (trl_run / "run.json").read_text()
    assert main(["finetune", str(RECIPE), "--data", str(instruct_tiny), "--out", str(trl_run), *TINY]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (trl_run / "run.json").read_text() == before


@pytest.mark.real_model  # trains the embedded model
def test_an_interrupted_run_resumes_from_its_last_checkpoint(
    tmp_path: Path, instruct_tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    from transformers import TrainerCallback

    import finetune.train as ft
    from tutor.cli import main

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # the first checkpoint is on disk: stop here, as ^C would
            raise KeyboardInterrupt

    make_trainer = ft.make_trainer

    def interrupted(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.add_callback(Interrupt())
        return trainer

    monkeypatch.setattr(ft, "make_trainer", interrupted)
    out = tmp_path / "run"
    data = str(instruct_tiny)
    command = ["finetune", str(RECIPE), "--data", data, "--out", str(out), *TINY, "--set", "save_steps=1"]
    assert main(command) == 130
    assert f"--out {out} --resume" in capsys.readouterr().err
    partial = out.with_name("run.partial")
    assert not out.exists() and (partial / "checkpoints" / "checkpoint-1").is_dir()
    logged = [json.loads(line) for line in (partial / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "loss" in r] == [1]

    monkeypatch.setattr(ft, "make_trainer", make_trainer)
    assert main([*command, "--resume"]) == 0
    _check_run(out, "trl")  # two steps, each logged once, the pre-training eval once
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in records if r["step"] == 0] == [r for r in logged if r["step"] == 0]
    assert not partial.exists()


# ---- the streamed merge, on the run above ----------------------------------------------------------


@pytest.mark.real_model  # trains the embedded model
def test_streamed_merge_matches_peft_merge(trl_run: Path, tmp_path: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from finetune.export import merge
    from tutor.models import embedded

    merged = merge(trl_run, tmp_path / "merged", shard_mb=64)  # small shards: exercise the index
    index = json.loads((merged / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert {"tokenizer.json", "config.json", "chat_template.jinja"} <= {p.name for p in merged.iterdir()}
    assert json.loads((merged / "config.json").read_text())["dtype"] == "float16"
    ids = torch.tensor([[1, 4093, 314, 253, 1345, 30, 2]])
    base = AutoModelForCausalLM.from_pretrained(str(embedded.hf_checkpoint()), dtype=torch.float32)
    reference = PeftModel.from_pretrained(base, str(trl_run / "adapter")).merge_and_unload()
    ours = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32)
    with torch.inference_mode():
        want, got = reference(ids).logits, ours(ids).logits
    assert torch.allclose(want, got, atol=0.05, rtol=0), float((want - got).abs().max())  # float16 storage
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_adapter_for_another_base_model_is_a_clear_error(trl_run: Path, tmp_path: Path, capsys):
    from transformers import LlamaConfig, LlamaForCausalLM

    from finetune.export import AdapterMismatchError, merge
    from tutor.cli import main

    other = tmp_path / "other-base"
    LlamaForCausalLM(
        LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=256,
        )
    ).save_pretrained(other)
    with pytest.raises(AdapterMismatchError, match="made for another base model"):
        merge(trl_run, tmp_path / "merged", base=other)
    assert main(["export", str(trl_run), "--merged", str(tmp_path / "merged"), "--base", str(other)]) == 2
    assert "made for another base model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-base"]  # nothing half-written
