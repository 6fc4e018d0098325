"""Recipes: every shipped YAML loads and says how to run it; overrides are typed; bad keys are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune.config import CONFIGS, Recipe, RecipeError, from_dict, load_recipe, parse_override, to_yaml
from tutor.errors import TutorError

SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_both_recipes_ship():
    assert {p.name for p in SHIPPED} >= {"llama-3.2-3b-qlora.yaml", "smollm2-135m-lora-cpu.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_recipe_loads_and_opens_with_its_command(path: Path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(f"# Run: ta finetune finetune/configs/{path.name}"), first


def test_original_recipe_numbers():
    r = load_recipe(CONFIGS / "llama-3.2-3b-qlora.yaml")
    assert (r.model, r.path, r.load_in_4bit, r.data) == (
        "unsloth/Llama-3.2-3B-Instruct",
        "unsloth",
        True,
        "mlabonne/FineTome-100k",
    )
    assert (r.lora_r, r.lora_alpha, r.lora_dropout) == (16, 16, 0.0)
    assert r.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (r.learning_rate, r.batch_size, r.grad_accum, r.max_seq_len) == (2e-4, 2, 4, 2048)
    assert (r.optim, r.lr_scheduler, r.seed) == ("adamw_8bit", "linear", 3407)


def test_cpu_recipe_uses_the_embedded_model():
    r = load_recipe(CONFIGS / "smollm2-135m-lora-cpu.yaml")
    assert r.model == "default" and r.load_in_4bit is False and r.path == "trl"


def test_overrides_are_parsed_as_yaml_and_type_checked():
    r = load_recipe(
        CONFIGS / "smollm2-135m-lora-cpu.yaml",
        ["learning_rate=1e-4", "max_steps=7", "path=unsloth", "target_modules=[q_proj, v_proj]", "min_score=null"],
    )
    assert (r.learning_rate, r.max_steps, r.path, r.target_modules, r.min_score) == (
        1e-4,
        7,
        "unsloth",
        ["q_proj", "v_proj"],
        None,
    )
    assert parse_override("eval_size=0.5") == ("eval_size", 0.5)


def test_resolved_recipe_round_trips(tmp_path: Path):
    r = load_recipe(CONFIGS / "llama-3.2-3b-qlora.yaml")
    (tmp_path / "r.yaml").write_text(to_yaml(r))
    assert load_recipe(tmp_path / "r.yaml") == r


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lora_rank": 8}, "unknown key(s) lora_rank"),
        ({"lora_r": "sixteen"}, "'lora_r' expects int"),
        ({"lora_r": 8.5}, "'lora_r' expects int"),
        ({"load_in_4bit": "yes"}, "'load_in_4bit' expects bool"),
        ({"target_modules": "q_proj"}, "'target_modules' expects a list of str"),
        ({"learning_rate": True}, "'learning_rate' expects float"),
        ({"path": "axolotl"}, "path must be 'trl' or 'unsloth'"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_bad_recipes_are_clear_errors(values: dict, message: str):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        from_dict(values)
    assert isinstance(caught.value, TutorError) and isinstance(caught.value, ValueError)  # one line in `ta`


def test_bad_files_and_overrides(tmp_path: Path):
    with pytest.raises(RecipeError, match="no recipe at"):
        load_recipe(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(tmp_path / "list.yaml")
    with pytest.raises(RecipeError, match="expects key=value"):
        load_recipe(CONFIGS / "smollm2-135m-lora-cpu.yaml", ["learning_rate"])
    with pytest.raises(RecipeError, match="unknown key"):
        load_recipe(CONFIGS / "smollm2-135m-lora-cpu.yaml", ["lr=1e-3"])


def test_cli_reports_recipe_errors_in_one_line(tmp_path: Path, capsys):
    from tutor.cli import main

    rc = main(
        ["finetune", str(CONFIGS / "smollm2-135m-lora-cpu.yaml"), "--set", "bogus=1", "--out", str(tmp_path / "run")]
    )
    assert rc == 2
    assert "unknown key(s) bogus" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
