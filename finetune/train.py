"""Train a LoRA/QLoRA adapter from a :class:`~finetune.config.Recipe`, on plain trl or on unsloth.

Both paths share everything but the model load: the data is tokenized once with response-only
labels (:mod:`finetune.data`) and trained by trl's ``SFTTrainer`` as a pre-tokenized dataset, so
trl uses our labels as they are. A run is written to ``NAME.partial/`` and renamed to ``NAME/``
only when the adapter, recipe, metrics, plot and model card are all there: a directory without
the suffix is always a complete run, and a ``.partial`` one can be resumed (``resume: true``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from finetune import card, data
from finetune.config import Recipe, RecipeError, to_yaml
from tutor.errors import TutorError


class TrainError(TutorError, ValueError):
    """A run the user can fix (its directory exists, nothing to resume); the message says what to pass.

    A ``ValueError`` too, so that callers written against the plain ``ValueError`` still catch it.
    """


def resolve_base(model: str) -> tuple[str, str]:
    """``(what to load, what adapter_config.json names)`` for a recipe's ``model``.

    The model registry's one rule (:func:`tutor.models.registry.resolve_base`): the embedded model is
    named by its short name, which resolves to the converted checkpoint on any machine; a local
    directory by its absolute path; a hub id as is.
    """
    from tutor.models.registry import resolve_base as resolve

    base = resolve(model)
    return base.path, base.name


def run_dirs(recipe: Recipe, name: str, out: str | Path | None) -> tuple[Path, Path]:
    """``(final, work)``: the run directory and the ``.partial`` one it is written in."""
    final = Path(out) if out else Path(recipe.output_dir) / (recipe.run_name or name)
    return final, final.with_name(final.name + ".partial")


def prepare(recipe: Recipe, tokenizer: Any) -> tuple[list[data.Example], list[data.Example], dict[str, int]]:
    """Read, normalise, filter, tokenize and split the recipe's data."""
    rows = data.read_rows(recipe.data, recipe.data_split)
    return data.build(
        rows,
        tokenizer,
        max_seq_len=recipe.max_seq_len,
        eval_size=recipe.eval_size,
        seed=recipe.seed,
        min_score=recipe.min_score,
        max_examples=recipe.max_examples,
    )


def train(recipe: Recipe, *, name: str = "run", out: str | Path | None = None, progress: bool = True) -> Path:
    """Train the adapter a recipe describes; returns the completed run directory.

    Args:
        recipe: the resolved recipe.
        name: the run name when the recipe sets none (the CLI passes the recipe file's stem and the time).
        out: the run directory itself, overriding ``output_dir/run_name``.
        progress: show trainer progress bars.

    Raises:
        TrainError: an existing run directory, or a resume with nothing to resume.
        RecipeError: a base model without a chat template, or a training path whose packages are missing.
        finetune.data.DataFormatError: data in no known format, or nothing usable left.
    """
    final, work = run_dirs(recipe, name, out)
    if final.exists():
        raise TrainError(f"{final} already exists: pass --out DIR or --set run_name=NEW_NAME")
    if recipe.path == "unsloth":
        _import_unsloth()  # must patch transformers before the model classes load
    base, base_name = resolve_base(recipe.model)
    tokenizer = load_tokenizer(base)
    train_set, eval_set, counts = prepare(recipe, tokenizer)  # bad data fails here, before any directory exists
    checkpoint = _start(work, recipe)
    model = load_model(recipe, base)
    trainer = make_trainer(recipe, model, tokenizer, train_set, eval_set, work, progress=progress)
    before = ((checkpoint and _logged_before(work)) or trainer.evaluate()) if eval_set else {}
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    after = _final_eval(trainer) if eval_set else {}
    save_adapter(trainer.model, work / "adapter", base_name)
    steps = max(int(result.global_step), 1)
    summary = {
        "base": base_name,
        "path": recipe.path,
        "data": recipe.data,
        "counts": counts,
        "steps": int(result.global_step),
        "train_seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / steps, 3),
        "train_loss": result.training_loss,
        "eval_loss_before": before.get("eval_loss"),
        "eval_loss_after": after.get("eval_loss"),
    }
    _finish(work, final, recipe, summary)
    return final


def _final_eval(trainer: Any) -> dict[str, Any]:
    """The eval metrics of the trained adapter, reusing an evaluation the trainer just ran at the last step."""
    evals = [r for r in trainer.state.log_history if "eval_loss" in r]
    if evals and evals[-1].get("step") == trainer.state.global_step:
        return evals[-1]
    return trainer.evaluate()


def _start(work: Path, recipe: Recipe) -> str | None:
    """Create the work directory; the checkpoint to resume from, if asked and present."""
    checkpoints = sorted((work / "checkpoints").glob("checkpoint-*"), key=_step)
    if recipe.resume:
        if not checkpoints:
            raise TrainError(f"resume: no checkpoint under {work}/checkpoints (set save_steps to save some)")
        _trim_metrics(work / "metrics.jsonl", _step(checkpoints[-1]))
        return str(checkpoints[-1])
    if work.exists():
        shutil.rmtree(work)  # an unfinished earlier attempt not asked to be resumed
    work.mkdir(parents=True)
    (work / "recipe.yaml").write_text(to_yaml(recipe), encoding="utf-8")
    return None


def _step(checkpoint: Path) -> int:
    """The global step a trainer checkpoint directory (``checkpoint-N``) was saved at."""
    return int(checkpoint.name.rsplit("-", 1)[-1])


def _trim_metrics(path: Path, step: int) -> None:
    """Forget what was logged after the checkpoint a run resumes from: those steps are trained again."""
    kept = [r for r in card.read_metrics(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def _logged_before(work: Path) -> dict[str, Any]:
    """The eval metrics logged before training began (step 0), when a resumed run has them."""
    return next((r for r in card.read_metrics(work / "metrics.jsonl") if r.get("step") == 0 and "eval_loss" in r), {})


def _finish(work: Path, final: Path, recipe: Recipe, summary: dict[str, Any]) -> None:
    (work / "run.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    records = card.read_metrics(work / "metrics.jsonl")
    card.plot_losses(records, work / "loss.png")
    (work / "README.md").write_text(card.model_card(recipe, summary), encoding="utf-8")
    shutil.rmtree(work / "checkpoints", ignore_errors=True)  # resumable state is useless once complete
    work.rename(final)


# ---- models ----------------------------------------------------------------------------------------


def torch_dtype(recipe: Recipe) -> Any:
    """The dtype the recipe asks for; ``auto`` is bfloat16 on a GPU that has it, else float32."""
    import torch

    if recipe.dtype != "auto":
        return getattr(torch, recipe.dtype)
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(base: str) -> Any:
    """The base model's tokenizer, with a pad token (the collator pads with it)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise RecipeError(f"{base} has no chat template: train from an instruct model's tokenizer")
    return tokenizer


def load_model(recipe: Recipe, base: str) -> Any:
    """The base model with fresh LoRA adapters, through the recipe's path."""
    if recipe.path == "unsloth":
        return _unsloth_model(recipe, base)
    return _trl_model(recipe, base)


def _trl_model(recipe: Recipe, base: str) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(recipe)}
    if recipe.load_in_4bit:
        kwargs["quantization_config"] = _nf4(recipe)
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if recipe.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.gradient_checkpointing)
    lora = LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _nf4(recipe: Recipe) -> Any:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise RecipeError(
            "load_in_4bit needs bitsandbytes: `pip install bitsandbytes` (or set load_in_4bit=false)"
        ) from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch_dtype(recipe),
    )


def _import_unsloth() -> None:
    try:
        import unsloth  # noqa: F401
    except ImportError as exc:
        raise RecipeError("path: unsloth needs unsloth: `pip install -e .[gpu]`, or --set path=trl") from exc


def _unsloth_model(recipe: Recipe, base: str) -> Any:
    _import_unsloth()
    from unsloth import FastLanguageModel

    model, _ = FastLanguageModel.from_pretrained(
        model_name=base,
        max_seq_length=recipe.max_seq_len,
        load_in_4bit=recipe.load_in_4bit,
        dtype=None if recipe.dtype == "auto" else torch_dtype(recipe),
    )
    return FastLanguageModel.get_peft_model(
        model,
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.target_modules),
        bias="none",
        use_gradient_checkpointing="unsloth" if recipe.gradient_checkpointing else False,
        random_state=recipe.seed,
        max_seq_length=recipe.max_seq_len,
    )


# ---- trainer ---------------------------------------------------------------------------------------


def make_trainer(
    recipe: Recipe, model: Any, tokenizer: Any, train_set: list, eval_set: list, work: Path, *, progress: bool = True
) -> Any:
    """Trl's SFTTrainer on pre-tokenized rows (their ``labels`` are used as they are)."""
    import datasets
    from trl import SFTConfig

    def as_dataset(examples: list[data.Example]) -> Any:
        return datasets.Dataset.from_list([e.as_dict() for e in examples]) if examples else None

    return trainer_class()(
        model=model,
        args=SFTConfig(**sft_args(recipe, work, has_eval=bool(eval_set)), disable_tqdm=not progress),
        train_dataset=as_dataset(train_set),
        eval_dataset=as_dataset(eval_set),
        processing_class=tokenizer,
        callbacks=[card.metrics_log(work / "metrics.jsonl")],
    )


def trainer_class() -> type:
    """Trl's SFTTrainer; off CUDA, one whose loss is the model's own cross-entropy.

    trl 1.x computes the loss through a fused LM head written in Triton, which has no CPU kernel
    ("0 active drivers"); the model's own loss over our labels is the same quantity.
    """
    import torch
    from transformers import Trainer
    from trl import SFTTrainer

    if torch.cuda.is_available():
        return SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        def compute_loss(
            self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return PlainLossSFTTrainer


def sft_args(recipe: Recipe, work: Path, *, has_eval: bool) -> dict[str, Any]:
    """The trainer arguments a recipe maps to."""
    import torch

    dtype = torch_dtype(recipe)
    evaluate = has_eval and recipe.eval_steps > 0
    return {
        "output_dir": str(work / "checkpoints"),
        "per_device_train_batch_size": recipe.batch_size,
        "per_device_eval_batch_size": recipe.batch_size,
        "gradient_accumulation_steps": recipe.grad_accum,
        "learning_rate": recipe.learning_rate,
        "lr_scheduler_type": recipe.lr_scheduler,
        "warmup_steps": recipe.warmup_steps,
        "max_steps": recipe.max_steps,
        "num_train_epochs": recipe.num_epochs,
        "optim": recipe.optim,
        "weight_decay": recipe.weight_decay,
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "logging_steps": recipe.logging_steps,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": recipe.eval_steps if evaluate else None,
        "save_strategy": "steps" if recipe.save_steps > 0 else "no",
        "save_steps": recipe.save_steps if recipe.save_steps > 0 else 500,
        "max_length": recipe.max_seq_len,
        "packing": False,
        "gradient_checkpointing": recipe.gradient_checkpointing,
        "bf16": dtype == torch.bfloat16,
        "fp16": dtype == torch.float16,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": torch.cuda.is_available(),
    }


def save_adapter(model: Any, target: Path, base_name: str) -> None:
    """Save the LoRA weights and point ``base_model_name_or_path`` at a name the registry resolves."""
    model.save_pretrained(str(target))
    config_path = target / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_name
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def with_overrides(recipe: Recipe, **changes: Any) -> Recipe:
    """A copy of ``recipe`` with the non-None ``changes`` applied (and type-checked)."""
    return replace(recipe, **{k: v for k, v in changes.items() if v is not None})
