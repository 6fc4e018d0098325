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

import importlib.util
import json
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
        ModelError: with what to do, for a missing file, an unknown scheme or a missing package.
    """
    if backend is not None and backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; use one of {BACKENDS}")
    model = _load(str(spec).strip(), backend, adapter, options)
    if self_check:
        model.self_check()
    return model


def _load(spec: str, backend: str | None, adapter: str | Path | None, options: dict[str, Any]) -> Model:
    if spec == "default":
        if backend == "transformers" or adapter is not None:
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
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelError(f"no model at {path}: {SPEC_HELP}")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path} is not a .gguf file: {SPEC_HELP}")
        if backend == "transformers":
            target = embedded.cache_dir() / f"{path.stem}-hf"
            if not (target / "model.safetensors").is_file():
                embedded.convert_gguf(path, target)
            return _transformers(target, adapter, options)
        return _llamacpp(path, options)
    if (path / "adapter_config.json").is_file():
        return _adapter(path, options)
    if (path / "config.json").is_file():
        return _transformers(path, adapter, options)
    raise ModelError(f"{path} holds neither config.json nor adapter_config.json: {SPEC_HELP}")


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
    path = Path(name).expanduser()
    if path.is_dir():
        return Base(str(path.resolve()), str(path.resolve()), local=True)
    if name == embedded.NAME or name.endswith(f"/{embedded.NAME}"):
        return _embedded_base()
    return Base(name, name, local=False)


def _embedded_base() -> Base:
    return Base(str(embedded.hf_checkpoint()), embedded.NAME, local=True)


def _adapter(path: Path, options: dict[str, Any]) -> Model:
    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"{path}/adapter_config.json names no base_model_name_or_path: which model was it trained on?")
    return _transformers(resolve_base(base).path, path, options)


def _llamacpp(path: Path, options: dict[str, Any]) -> Model:
    from tutor.models.llamacpp import LlamaCppModel

    return LlamaCppModel(path, **options)


def _server(url: str, options: dict[str, Any]) -> Model:
    from tutor.models.openai import OpenAIServerModel

    if not url.startswith(("http://", "https://")):
        raise ModelError(f"openai:{url} is not a URL: write openai:http://host:port/v1")
    options.pop("n_threads", None)  # threads belong to the server (start it with its own thread flag)
    unknown = sorted(set(options) - set(SERVER_OPTIONS) - {"transport", "backoff"})
    if unknown:
        raise ModelError(f"{', '.join(unknown)} cannot be set for a server model; it takes {', '.join(SERVER_OPTIONS)}")
    return OpenAIServerModel(url, **options)


def _transformers(path: str | Path, adapter: str | Path | None, options: dict[str, Any]) -> Model:
    from tutor.models.transformers import TransformersModel

    return TransformersModel.load(path, adapter=adapter, **options)


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
