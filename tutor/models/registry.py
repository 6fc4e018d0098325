"""``load_model(spec)``: one string names any model the product can run.

=============================  ===============================================================
spec                           what loads
=============================  ===============================================================
``default``                    the embedded SmolLM2-135M-Instruct (llama.cpp; ``backend=
                               "transformers"`` uses its converted safetensors checkpoint)
``path/to/model.gguf``         that GGUF file in llama.cpp
``path/to/checkpoint/``        a transformers checkpoint directory (``config.json``)
``path/to/adapter/``           a PEFT adapter directory (``adapter_config.json``): its base, then it
``hf:org/name``                a hub checkpoint (needs a network)
``openai:http://host:port/v1``  a model on an OpenAI-compatible server (vLLM, SGLang, llama.cpp;
                               ``model=NAME`` when it serves several; see :mod:`tutor.models.openai`)
=============================  ===============================================================
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import json
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tutor.models import embedded
from tutor.models.base import Model, ModelError

BACKENDS = ("llamacpp", "transformers")
SPEC_HELP = (
    "use 'default', a .gguf file, a transformers checkpoint directory, a PEFT adapter directory, hf:org/name, "
    "or openai:http://host:port/v1"
)
SERVER_OPTIONS = ("model", "profile", "api_key", "max_in_flight", "timeout", "retries", "allow_unconstrained")
# What a transformers checkpoint directory holds its weights in (one file, or shards with an index).
WEIGHT_PATTERNS = (
    "*.safetensors",
    "pytorch_model*.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def load_model(
    spec: str | Path = "default",
    *,
    backend: str | None = None,
    adapter: str | Path | None = None,
    self_check: bool = True,
    **options: Any,
) -> Model:
    """Load the model ``spec`` names (see the module docstring).

    Args:
        spec: what to load.
        backend: force ``"llamacpp"`` or ``"transformers"`` where both could serve (``default``).
        adapter: a PEFT adapter directory to apply on top of a transformers model.
        self_check: prove constrained decoding is active before handing the model out.
        **options: passed to the backend (``n_ctx``, ``grammar_backend``, ...).

    Raises:
        ModelError: with what to do, for a missing file, an unknown scheme, a missing package, or an option the
            backend does not take (the closest name suggested) or of the wrong type.
    """
    if backend is not None and backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; use one of {BACKENDS}")
    if backend == "llamacpp" and adapter is not None:
        raise ModelError(
            "the transformers backend applies an adapter: drop --backend llamacpp, or merge the adapter and export it "
            "as one GGUF file (`ta finetune export`)"
        )
    model = _load(str(spec).strip(), backend, adapter, options)
    if self_check:
        model.self_check()
    return model


def _load(spec: str, backend: str | None, adapter: str | Path | None, options: dict[str, Any]) -> Model:
    if spec == "default":
        if backend == "transformers" or adapter is not None:
            _check_transformers(options)  # before a first use converts the embedded model (a minute)
            return _transformers(embedded.hf_checkpoint(), adapter, options)
        model = _llamacpp(embedded.gguf_path(), options)
        model.name = embedded.NAME
        return model
    if spec.startswith("hf:"):
        return _transformers(spec[3:], adapter, options)
    if spec.startswith(("openai:", "http://", "https://")):
        if backend is not None or adapter is not None:
            raise ModelError(f"{spec} is served by its server: drop --backend and --adapter (the server loads them)")
        return _server(spec.removeprefix("openai:"), options)
    scheme = spec.split(":", 1)[0]
    if ":" in spec and len(scheme) > 1 and not Path(spec).exists():
        raise ModelError(f"unknown model scheme {scheme!r} in {spec!r}: {SPEC_HELP}")
    path = expand(spec)
    if not path.exists():
        raise ModelError(f"no model at {path}: {SPEC_HELP}")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path} is not a .gguf file: {SPEC_HELP}")
        if backend == "transformers" or adapter is not None:
            _check_transformers(options)
            return _transformers(_converted(path), adapter, options)
        return _llamacpp(path, options)
    if (path / "adapter_config.json").is_file():
        return _adapter(path, options)
    if (path / "config.json").is_file():
        _check_checkpoint(path)
        return _transformers(path, adapter, options)
    raise ModelError(f"{path} holds neither config.json nor adapter_config.json: {SPEC_HELP}")


def expand(spec: str | Path) -> Path:
    """``spec`` as a path, ``~`` and ``~user`` expanded.

    Raises:
        ModelError: for ``~user`` when there is no such user (``Path.expanduser`` raises a RuntimeError), or a user
            name the password database cannot look up (a NUL byte: ValueError).
    """
    try:
        return Path(spec).expanduser()
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot expand {str(spec)!r} ({exc}): write the path out in full") from exc


def _converted(gguf: Path) -> Path:
    """The transformers checkpoint converted from ``gguf`` (converted now unless cached).

    The cache is keyed by the file's absolute path, size and modification time: every fine-tuning run exports a file
    of the same name (``model-q8_0.gguf``), and a stem alone would serve one run's weights for another's.
    """
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = embedded.cache_dir() / f"{gguf.stem}-{key}-hf"
    if not (target / "model.safetensors").is_file():
        embedded.convert_gguf(gguf, target)
    return target


def _check_checkpoint(path: Path) -> None:
    """Refuse, before torch is imported, a checkpoint directory whose config is not JSON or that holds no weights."""
    _read_json(path / "config.json", "copy the checkpoint again, or point --model at a complete checkpoint")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise ModelError(
            f"{path} has a config.json but no weights (model.safetensors or pytorch_model.bin): copy the whole "
            "checkpoint folder, or point --model at the folder that holds them"
        )


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    """The JSON object in ``path``; a ModelError naming the file and ``fix`` when it is anything else."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}): {fix}") from exc
    if not isinstance(value, dict):
        raise ModelError(f"{path} holds a JSON {type(value).__name__}, not an object: {fix}")
    return value


@dataclass(frozen=True)
class Base:
    """A base model resolved: what to load, and what an adapter trained on it records as its base."""

    path: str  # a local checkpoint directory, or a hub id (loading it needs a network)
    name: str  # portable: the embedded model by its short name, a directory by its absolute path, a hub id as is
    local: bool  # whether ``path`` is a directory on this machine


def resolve_base(name: str | Path) -> Base:
    """Resolve a base model named by a recipe, an adapter's config or a flag; the one rule for all of them.

    ``default`` or the embedded model's name (alone or after an organisation, as a hub id would have
    it) is the embedded model's converted checkpoint, on any machine; an existing directory is itself;
    anything else is a hub id.

    Raises:
        ModelError: for an empty name.
    """
    name = str(name).strip()
    if not name:
        raise ModelError(f"no base model named: pass 'default', a checkpoint directory or a hub id ({SPEC_HELP})")
    if name == "default":
        return _embedded_base()
    path = expand(name)
    if path.is_dir():
        return Base(str(path.resolve()), str(path.resolve()), local=True)
    if name == embedded.NAME or name.endswith(f"/{embedded.NAME}"):
        return _embedded_base()
    return Base(name, name, local=False)


def _embedded_base() -> Base:
    return Base(str(embedded.hf_checkpoint()), embedded.NAME, local=True)


def _adapter(path: Path, options: dict[str, Any]) -> Model:
    config = _read_json(path / "adapter_config.json", "save the adapter again (`ta finetune train` writes it)")
    base = config.get("base_model_name_or_path")
    if not base or not isinstance(base, str):
        raise ModelError(f"{path}/adapter_config.json names no base_model_name_or_path: which model was it trained on?")
    return _transformers(resolve_base(base).path, path, options)


def _llamacpp(path: Path, options: dict[str, Any]) -> Model:
    from tutor.models.llamacpp import LlamaCppModel

    check_options(LlamaCppModel, options, "llamacpp")
    return LlamaCppModel(path, **options)


def check_options(target: Callable[..., Any], options: dict[str, Any], backend: str) -> None:
    """Refuse an option ``target`` (a backend's constructor) does not take, or one of the wrong type, before loading.

    The options and their types are read from ``target``'s keyword-only parameters, so a backend's signature is the
    one list of what it takes; a backend checks the ranges itself (some depend on the model, like its context).

    Raises:
        ModelError: naming the option, the closest one it takes (a typo), or the type it wants.
    """
    params = [p.name for p in inspect.signature(target).parameters.values() if p.kind is p.KEYWORD_ONLY]
    params = [name for name in params if name != "adapter"]  # load_model's own argument
    for key in options:
        if key not in params:
            close = difflib.get_close_matches(str(key), params, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ModelError(f"unknown option {key}{hint} (the {backend} backend takes {', '.join(params)})")
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except (NameError, TypeError):  # an annotation that names a type imported for checkers only: check no types
        hints = {}
    for key, value in options.items():
        wanted = hints.get(key, Any)
        if not _is_a(value, wanted):
            names = " or ".join(_type_name(t) for t in typing.get_args(wanted) or (wanted,))
            raise ModelError(f"option {key} must be {names}, not {value!r} ({type(value).__name__})")


def _is_a(value: Any, wanted: Any) -> bool:
    """Whether ``value`` fits the annotation ``wanted`` (a bool is no int here; a float must be finite)."""
    if wanted is Any:
        return True
    if typing.get_args(wanted) and typing.get_origin(wanted) in (typing.Union, type(int | None)):
        return any(_is_a(value, arm) for arm in typing.get_args(wanted))
    if wanted is type(None):
        return value is None
    if wanted is bool or wanted is int:
        return type(value) is wanted
    if wanted is float:
        return type(value) in (int, float) and math.isfinite(value)
    if wanted is Path:
        return isinstance(value, Path)
    return isinstance(value, typing.get_origin(wanted) or wanted)


def _type_name(t: Any) -> str:
    names = {type(None): "None", int: "a whole number (int)", float: "a number", bool: "True or False", str: "text"}
    return names.get(t, getattr(t, "__name__", str(t)))


def _server(url: str, options: dict[str, Any]) -> Model:
    from tutor.models.openai import OpenAIServerModel

    if not url.startswith(("http://", "https://")):
        raise ModelError(f"openai:{url} is not a URL: write openai:http://host:port/v1")
    options.pop("n_threads", None)  # threads belong to the server (start it with its own thread flag)
    unknown = sorted(set(options) - set(SERVER_OPTIONS) - {"transport", "backoff"}, key=str)
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), SERVER_OPTIONS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        names = ", ".join(map(str, unknown))
        raise ModelError(f"{names} cannot be set for a server model{hint}; it takes {', '.join(SERVER_OPTIONS)}")
    return OpenAIServerModel(url, **options)


def _transformers(path: str | Path, adapter: str | Path | None, options: dict[str, Any]) -> Model:
    from tutor.models.transformers import TransformersModel

    _check_transformers(options)
    return TransformersModel.load(path, adapter=adapter, **options)


def _check_transformers(options: dict[str, Any]) -> None:
    from tutor.models.transformers import TransformersModel  # light: torch is imported by load() itself

    check_options(TransformersModel.load, options, "transformers")


def describe() -> dict[str, Any]:
    """What ``default`` resolves to and which backends are installed (for ``ta models``)."""
    try:
        default: str = str(embedded.gguf_path())
    except ModelError as exc:
        default = f"not installed ({exc})"
    installed = {
        "llamacpp": _has("llama_cpp") and _has("llguidance"),
        "transformers": _has("torch") and _has("transformers") and _has("llguidance"),
        "peft": _has("peft"),
        "openai": _has("httpx"),
    }
    return {"default": default, "cache": str(embedded.cache_dir()), "backends": installed}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
