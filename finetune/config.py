"""A fine-tuning recipe: one typed dataclass, read from a YAML file, overridable with ``--set key=value``.

Every field has a default, so a recipe file names only what it changes; an unknown key or a value of
the wrong type is an error that names the field and what it expects, never a silent default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutor.errors import TutorError

_UNSAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
MAX_RECIPE_BYTES = 256 * 1024  # the shipped recipes are 1-2 KB
CONFIGS = Path(__file__).resolve().parent / "configs"
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]


class RecipeError(TutorError, ValueError):
    """A recipe the user can fix (a missing file, an unknown key, a value of the wrong type); the message says how.

    A ``ValueError`` too, so that callers written against the plain ``ValueError`` still catch it.
    """


@dataclass
class Recipe:
    """How one adapter is trained: model, data, LoRA, optimisation and bookkeeping."""

    # The base model: "default" (the embedded SmolLM2-135M-Instruct), a checkpoint directory or a hub id.
    model: str = "default"
    # Training path: "trl" (transformers + peft + trl) or "unsloth" (FastLanguageModel).
    path: str = "trl"
    # Load the base in 4-bit nf4 with double quantization (QLoRA, needs bitsandbytes); else 16/32-bit LoRA.
    load_in_4bit: bool = False
    # Weights dtype for a 16-bit base: "auto" (bfloat16 on a GPU that has it, else float32), "float32",
    # "float16" or "bfloat16".
    dtype: str = "auto"
    # Training data: a hub dataset id or a local .jsonl/.json/.parquet file (ShareGPT, OpenAI messages or Alpaca).
    data: str = "mlabonne/FineTome-100k"
    # Split to read from a hub dataset.
    data_split: str = "train"
    # Keep only rows whose `score` is at least this (FineTome's quality score); null keeps every row.
    min_score: float | None = None
    # Use at most this many rows (after filtering), for quick runs; null uses all.
    max_examples: int | None = None
    # Held-out evaluation rows: an integer count, or a fraction of the data when below 1.
    eval_size: float = 0.02
    # Longest training sequence in tokens; longer conversations are dropped, not truncated.
    max_seq_len: int = 2048
    # LoRA rank.
    lora_r: int = 16
    # LoRA alpha (the update is scaled by alpha / r).
    lora_alpha: int = 16
    # LoRA dropout.
    lora_dropout: float = 0.0
    # Modules that get LoRA adapters (all attention and MLP projections by default).
    target_modules: list[str] = field(default_factory=lambda: ATTENTION + MLP)
    # Peak learning rate.
    learning_rate: float = 2e-4
    # Sequences per device per step.
    batch_size: int = 2
    # Gradient accumulation steps (effective batch = batch_size * grad_accum).
    grad_accum: int = 4
    # Optimiser steps; a positive number overrides num_epochs.
    max_steps: int = -1
    # Passes over the training data when max_steps is not positive.
    num_epochs: float = 1.0
    # Linear warm-up steps.
    warmup_steps: int = 5
    # Learning-rate schedule (a transformers SchedulerType: linear, cosine, constant, ...).
    lr_scheduler: str = "linear"
    # Optimiser (a transformers OptimizerNames: adamw_torch, adamw_8bit, ...).
    optim: str = "adamw_torch"
    # Weight decay.
    weight_decay: float = 0.01
    # Random seed for data order, LoRA init and the eval split.
    seed: int = 3407
    # Log the training loss every this many steps.
    logging_steps: int = 1
    # Evaluate every this many steps (and always before and after training); 0 evaluates only before and after.
    eval_steps: int = 0
    # Save a resumable checkpoint every this many steps; 0 saves none.
    save_steps: int = 0
    # Trade compute for memory by recomputing activations in the backward pass.
    gradient_checkpointing: bool = False
    # Where run directories go (a run is written to OUTPUT_DIR/RUN_NAME).
    output_dir: str = "runs"
    # Run directory name; null derives one from the recipe name and the time.
    run_name: str | None = None
    # Resume from the latest checkpoint of an unfinished run with the same name.
    resume: bool = False

    def __post_init__(self) -> None:
        check_types(self)
        if self.path not in ("trl", "unsloth"):
            raise RecipeError(f"path must be 'trl' or 'unsloth', got {self.path!r}")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise RecipeError(f"dtype must be auto, float32, float16 or bfloat16, got {self.dtype!r}")
        for name in ("max_seq_len", "lora_r", "lora_alpha", "batch_size", "grad_accum", "logging_steps"):
            if getattr(self, name) < 1:
                raise RecipeError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.eval_size < 0:
            raise RecipeError(f"eval_size must be a count or a fraction >= 0, got {self.eval_size}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):  # YAML's .nan and .inf, or 1e999
                raise RecipeError(f"recipe field {f.name!r} must be a finite number, got {value}")
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str) and _UNSAFE.search(text):  # a path or model id never holds one
                    raise RecipeError(f"recipe field {f.name!r} holds a control character or lone surrogate: {text!r}")
        if self.run_name is not None and (
            Path(self.run_name).name != self.run_name or self.run_name in ("", ".", "..")
        ):
            raise RecipeError(
                f"run_name must be a plain folder name (no '/' or '..'), got {self.run_name!r}: "
                "set output_dir for where runs go"
            )


def check_types(recipe: Recipe) -> None:
    """Raise :class:`RecipeError` naming the first field whose value does not match its annotation."""
    hints = typing.get_type_hints(Recipe)
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        if not _matches(value, hints[f.name]):
            raise RecipeError(f"recipe field {f.name!r} expects {_describe(hints[f.name])}, got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if hint is float:  # YAML writes 1 for 1.0; an int is a fine float, a bool is not
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    return "null" if hint is type(None) else hint.__name__


FLOATS = frozenset(k for k, h in typing.get_type_hints(Recipe).items() if h in (float, float | None))


def field_names() -> list[str]:
    """Every recipe key, in declaration order."""
    return [f.name for f in dataclasses.fields(Recipe)]


def from_dict(values: dict[str, Any], *, source: str = "recipe") -> Recipe:
    """Build a :class:`Recipe`, rejecting keys it does not know."""
    unknown = sorted(repr(k) if not isinstance(k, str) else k for k in set(values) - set(field_names()))
    if unknown:
        raise RecipeError(f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(field_names())}")
    # An int where a float is expected is promoted so the resolved recipe reads back the same way.
    clean = {k: float(v) if k in FLOATS and type(v) is int else v for k, v in values.items()}
    return Recipe(**clean)


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``; the value is read as YAML (numbers, booleans, lists, null)."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"--set expects key=value, got {item!r} (e.g. --set learning_rate=1e-4)")
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError) as exc:
        raise RecipeError(f"--set {key}: the value {raw[:80]!r} is not valid YAML: {exc}"[:500]) from exc
    except UnicodeError as exc:  # a command line's undecodable bytes arrive as lone surrogates
        raise RecipeError(f"--set {key}: the value {raw[:80]!r} is not UTF-8 text") from exc
    key = key.strip()
    if key in FLOATS and isinstance(value, str) and _is_number(raw):  # YAML 1.1 reads "1e-4" as a string
        value = float(raw)
    return key, value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe YAML file and apply ``key=value`` overrides.

    Raises:
        RecipeError: for a missing or malformed file, an unknown key or a value of the wrong type.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        shipped = ", ".join(p.name for p in sorted(CONFIGS.glob("*.yaml")))
        raise RecipeError(f"no recipe at {path}: pass a YAML file, e.g. finetune/configs/ ({shipped})")
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise RecipeError(f"{path} is over {MAX_RECIPE_BYTES // 1024} KB: a recipe is a few keys, not data")
        values = _yaml_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path} is not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path} is not UTF-8 text (byte {exc.start}): save the recipe as UTF-8") from exc
    except RecursionError as exc:  # "[[[[..." thousands deep: the YAML parser recurses once per level
        raise RecipeError(f"{path} is nested too deeply to be a recipe: it is a mapping of keys to values") from exc
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if not isinstance(values, dict):
        raise RecipeError(f"{path} must be a mapping of recipe keys, got {type(values).__name__}")
    values = {k: _number(v) if k in FLOATS else v for k, v in values.items()}
    for item in overrides:
        key, value = parse_override(item)
        values[key] = value
    return from_dict(values, source=str(path))


def _yaml_load(text: str) -> Any:
    """YAML 1.1 as ``yaml.safe_load`` reads it, through libyaml where it is built in.

    libyaml is many times faster, and refuses nesting past its depth limit at once, where the pure-Python parser
    spends seconds before a RecursionError on a file of ``[[[[...``.
    """
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _number(value: Any) -> Any:
    # YAML 1.1 reads 2e-4 (no dot) as a string; a recipe author means the number.
    return float(value) if isinstance(value, str) and _is_number(value) and "e" in value.lower() else value


def to_yaml(recipe: Recipe) -> str:
    """The resolved recipe, every field, as YAML (written into each run directory)."""
    import yaml

    return yaml.safe_dump(dataclasses.asdict(recipe), sort_keys=False)
