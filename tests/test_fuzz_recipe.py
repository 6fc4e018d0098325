"""Recipe YAML (``ta finetune RECIPE --set key=value``), fed generated files and overrides: a Recipe or a RecipeError.

Files are made from recipe keys and values of every YAML type (null, booleans, huge integers, ``.nan``, ``.inf``,
dates, lists, mappings, anchors), from YAML-shaped text (tags, complex keys, deep nesting) and from raw bytes. A
recipe that loads is checked as the trainer reads it: every field of its annotated type, numbers finite, text
without control characters, and ``to_yaml`` reads back as the same recipe.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from finetune.config import Recipe, RecipeError, check_types, field_names, load_recipe, to_yaml
from tests.fuzzing import NASTY, budget, clear_error_or_works, json_values, nasty_text, scratch

WORK = scratch("recipe-")
FIELDS = field_names()

values = (
    json_values
    | st.sampled_from(["trl", "unsloth", "auto", "float16", "default", "runs", "q_proj", "1e-4", "2e-4", "1e5"])
    | st.floats(min_value=-10, max_value=10)
    | st.integers(-3, 5000)
    | st.lists(st.sampled_from(["q_proj", "v_proj", "", "\x00"]), max_size=3)
)
keys = st.sampled_from(FIELDS) | nasty_text | st.integers(-2, 2) | st.none() | st.booleans()


def check_recipe(recipe: Recipe) -> None:
    """What the trainer relies on: typed fields, finite numbers, a run name that is one folder; YAML round-trips."""
    check_types(recipe)
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        assert not (isinstance(value, float) and not math.isfinite(value)), (f.name, value)
    if recipe.run_name is not None:
        assert Path(recipe.run_name).name == recipe.run_name not in ("", ".", "..")
    again = write("again.yaml", to_yaml(recipe).encode("utf-8"))
    assert load_recipe(again) == recipe


def write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def load(path: Path, overrides: list[str] = ()) -> None:
    """Load: a well-formed recipe, or a RecipeError (a TutorError) with a message."""
    recipe = clear_error_or_works(lambda: load_recipe(path, list(overrides)))
    if recipe is None:
        with pytest.raises(RecipeError):
            load_recipe(path, list(overrides))
    else:
        check_recipe(recipe)


# What fuzzing found (minimal examples): a key YAML reads as a number next to a name (sorting them raised
# TypeError), a text field that looks like a number in e-notation ("1e5" as run_name became a float, then a type
# error), ".nan"/".inf" accepted as a learning rate, a NUL in output_dir (mkdir's ValueError), a run name that
# is a path, bytes that are not UTF-8 (UnicodeDecodeError) and YAML nested past the parser's recursion limit.
@budget(100)
@given(st.dictionaries(keys, values, max_size=6), st.lists(st.sampled_from(FIELDS) | nasty_text, max_size=2))
@example({1: 2, "lora_r": 8}, [])
@example({"run_name": "1e5", "model": "2e3"}, [])
@example({"learning_rate": math.nan}, [])
@example({"eval_size": math.inf}, [])
@example({"output_dir": "runs\x00"}, [])
@example({"run_name": "../elsewhere"}, [])
@example({"target_modules": ["q_proj", None]}, [])
def test_recipe_files_load_or_name_the_field(values: dict, override_keys: list) -> None:
    text = yaml.safe_dump(values, allow_unicode=False)
    overrides = [f"{k}={v}" for k, v in zip(override_keys, ["1e-4", "1e5", ".nan", "[a, b]", "~", "x"], strict=False)]
    load(write("recipe.yaml", text.encode("utf-8")), overrides)


yaml_pieces = st.sampled_from(
    [
        "lora_r: 8\n",
        "learning_rate: 2e-4\n",
        "learning_rate: .nan\n",
        "max_steps: 99999999999999999999999\n",
        "run_name: 2024-01-01\n",
        "? [a, b]\n: c\n",
        "!!python/object:os.system x\n",
        "!!binary aGVsbG8=\n",
        "a: &x [1, 2]\nb: *x\n",
        "target_modules: [q_proj, *missing]\n",
        "[" * 2000 + "\n",
        "{" * 50 + "\n",
        "- a\n- b\n",
        "---\n---\n",
        "%YAML 1.2\n",
        "\t- tab\n",
        "key: 'unterminated\n",
        'run_name: "\\ud800"\n',
        'run_name: "a\\0b"\n',
        'output_dir: "\\x1b[2J"\n',
    ]
) | st.text(max_size=30)


@budget(100)
@given(st.lists(yaml_pieces, max_size=4).map("".join).map(str.encode) | st.binary(max_size=100))
@example(b"[" * 100_000)
@example(b"\xff\xfe: 1")
@example(b"a: 1\n" * 3 + b"\x85")
def test_any_yaml_text_or_bytes_is_a_recipe_or_a_recipe_error(data: bytes) -> None:
    load(write("any.yaml", data))


@budget(100)
@given(st.lists(st.sampled_from(FIELDS) | nasty_text, max_size=3), st.lists(st.sampled_from(NASTY) | nasty_text))
@example(["run_name"], ["1e5"])
@example(["seed"], ["1e5"])
@example(["lora_r"], ["[" * 3000])
def test_set_overrides_load_or_name_the_field(override_keys: list, raw: list) -> None:
    base = write("base.yaml", b"lora_r: 8\n")
    load(base, [f"{k}={v}" for k, v in zip(override_keys, raw, strict=False)])
    load(base, list(raw))  # no "=" at all, or one in the value
