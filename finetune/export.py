"""A run's adapter -> a merged 16-bit checkpoint -> a GGUF file (f16, q8_0, q4_k_m), with no network.

**Merge, streamed.** The base checkpoint is read one tensor at a time from its safetensors files
(always the 16-bit base, even when training loaded it in 4-bit), ``W += scale * B @ A`` is applied
to each LoRA target, and tensors are written in shards of ``shard_mb``. Peak memory is one shard
plus one tensor plus the runtime, not the model: the out-of-memory merge is what forced the
original project to shrink its model. Every adapter tensor is checked against the base's shapes
before anything is written, so an adapter made for another base model is a clear error.

**GGUF, offline.** The ``gguf`` package alone has no Hugging Face converter. llama-cpp-python's
source distribution carries llama.cpp's ``convert_hf_to_gguf.py`` (with its ``conversion``
package and its own ``gguf-py``) at the exact llama.cpp commit of the installed wheel, and the
wheel's compiled library exposes ``llama_model_quantize``. :func:`converter` finds the converter,
in this order:

1. ``$TUTOR_LLAMA_CPP``: a llama.cpp source tree;
2. ``<cache>/llama-cpp-python-<version>/``: extracted once from the sdist and kept;
3. the sdist file ``$TUTOR_LLAMA_CPP_SDIST`` (``llama_cpp_python-<version>.tar.gz``), else one
   fetched by ``pip download --no-deps --no-binary :all: llama-cpp-python==<version>`` (pip's cache
   or the package index: a package, never a model hub), then extracted as in 2.

Run ``ta export --prepare`` once while a package index is reachable (or point the variables at
local copies); every export after that is offline. The converter writes f16 (keeping the chat
template in ``tokenizer.chat_template``); q8_0 and q4_k_m are quantized from it in-process by the
compiled library.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tutor.errors import TutorError

QUANTS = ("f16", "q8_0", "q4_k_m")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
INDEX = "model.safetensors.index.json"


class ExportError(TutorError, ValueError):
    """An export the user can fix (no adapter, an unsupported one, a missing converter); the message says how.

    A ``ValueError`` too, so that callers written against the plain ``ValueError`` still catch it.
    """


class AdapterMismatchError(ExportError):
    """The adapter does not fit the base model it names (made for another model)."""


@dataclass
class Lora:
    """One LoRA pair and its scale: the update is ``scale * B @ A``."""

    a: Any
    b: Any
    scale: float
    fan_in_fan_out: bool = False


# ---- locating things -------------------------------------------------------------------------------


def adapter_dir(run: str | Path) -> Path:
    """The adapter directory of a run directory (or the adapter directory itself)."""
    run = Path(run)
    for candidate in (run / "adapter", run):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    if run.with_name(run.name + ".partial").exists():
        raise ExportError(f"{run} is unfinished ({run.name}.partial): finish or resume the run before exporting")
    raise ExportError(f"no adapter in {run}: pass a run directory written by `ta finetune` (it holds adapter/)")


def base_checkpoint(name: str) -> Path:
    """The 16-bit base checkpoint directory an adapter names (embedded name, local dir or hub id).

    Resolved by the model registry's one rule (:func:`tutor.models.registry.resolve_base`); a hub id is
    then fetched, since the streamed merge reads the base's files.
    """
    from tutor.models.registry import resolve_base

    base = resolve_base(name)
    if base.local:
        return Path(base.path)
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.model", "*.txt"]
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as exc:  # offline or unknown: say which model and how to point at a local copy
        raise ExportError(
            f"cannot find the base model {name!r} ({exc}): pass a local checkpoint with --base DIR"
        ) from exc


def weight_files(base: Path) -> list[Path]:
    """The base's safetensors files, in index order."""
    index = base / INDEX
    if index.is_file():
        names = dict.fromkeys(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        return [base / n for n in names]
    single = base / "model.safetensors"
    if single.is_file():
        return [single]
    raise ExportError(f"{base} has no safetensors weights: the streamed merge reads .safetensors checkpoints only")


# ---- the adapter -----------------------------------------------------------------------------------


def read_lora(adapter: Path) -> dict[str, Lora]:
    """The adapter's updates keyed by the base weight they change (``model.layers.0.mlp.up_proj.weight``)."""
    from safetensors.torch import load_file

    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
        raise ExportError(f"{adapter}: only plain LoRA adapters can be merged (got {config.get('peft_type')}, DoRA?)")
    if config.get("modules_to_save"):
        raise ExportError(f"{adapter}: modules_to_save ({config['modules_to_save']}) is not supported by the merge")
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        module, _, kind = key.removeprefix("base_model.model.").rpartition(".lora_")
        if not module:
            raise ExportError(
                f"{adapter}: unexpected tensor {key!r} (embedding LoRA or extra weights cannot be merged)"
            )
        pairs.setdefault(module, {})[kind.split(".")[0]] = value
    return {f"{m}.weight": _lora(m, p, config) for m, p in pairs.items()}


def _lora(module: str, pair: dict[str, Any], config: dict[str, Any]) -> Lora:
    if set(pair) != {"A", "B"}:
        raise ExportError(
            f"LoRA weights for {module} are incomplete ({sorted(pair)}): the adapter file is damaged, "
            "save or train it again"
        )
    rank = _pattern(config.get("rank_pattern") or {}, module, config["r"])
    alpha = _pattern(config.get("alpha_pattern") or {}, module, config["lora_alpha"])
    scale = alpha / (rank**0.5 if config.get("use_rslora") else rank)
    return Lora(pair["A"], pair["B"], scale, bool(config.get("fan_in_fan_out")))


def _pattern(patterns: dict[str, Any], module: str, default: Any) -> Any:
    for key, value in patterns.items():
        if module == key or module.endswith("." + key):
            return value
    return default


def check_fits(loras: dict[str, Lora], base: Path) -> None:
    """Raise :class:`AdapterMismatchError` unless every update has a base weight of its shape."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in weight_files(base):
        with safe_open(str(file), framework="pt") as f:
            shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
    for key, lora in loras.items():
        want = (lora.b.shape[0], lora.a.shape[1])
        want = want[::-1] if lora.fan_in_fan_out else want
        if key not in shapes:
            raise AdapterMismatchError(
                f"the adapter changes {key}, which {base} does not have: it was made for another base model"
            )
        if shapes[key] != want:
            raise AdapterMismatchError(
                f"the adapter's update of {key} is {want} but {base} holds {shapes[key]}: "
                "it was made for another base model (check base_model_name_or_path in adapter_config.json)"
            )


# ---- merge -----------------------------------------------------------------------------------------


def merged_dtype(base: Path, dtype: str) -> Any:
    """``auto`` keeps a 16-bit base's dtype and stores a 32-bit one as float16."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    named = str(config.get("dtype") or config.get("torch_dtype") or "float16")
    return torch.bfloat16 if named == "bfloat16" else torch.float16


def merge(
    run: str | Path, out: str | Path, *, dtype: str = "auto", shard_mb: int = 1000, base: str | Path | None = None
) -> Path:
    """Write the base with the run's LoRA merged in, as a 16-bit safetensors checkpoint at ``out``.

    ``base`` overrides the base checkpoint the adapter names (a local copy of a hub model, or the
    16-bit original of a base that was pre-quantized).

    Raises:
        AdapterMismatchError: the adapter was made for another base model.
        ExportError: no adapter, an unsupported adapter, or ``out`` already exists.
    """
    adapter = adapter_dir(run)
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists: pass another --merged DIR or remove it")
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    base = Path(base) if base else base_checkpoint(config.get("base_model_name_or_path") or "")
    loras = read_lora(adapter)
    check_fits(loras, base)  # before a byte is written
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    target = merged_dtype(base, dtype)
    _write_shards(_merged_tensors(base, loras, target), work, shard_mb * 2**20)
    _copy_side_files(base, work, target)
    work.rename(out)
    return out


def _merged_tensors(base: Path, loras: dict[str, Lora], dtype: Any) -> Any:
    """Yield ``(name, tensor)`` of the merged model, one tensor in memory at a time."""
    from safetensors import safe_open

    for file in weight_files(base):
        with safe_open(str(file), framework="pt") as f:
            keys = list(f.keys())
        for key in keys:
            # Reopen per tensor: a kept mmap would leave every page read so far resident.
            with safe_open(str(file), framework="pt") as f:
                tensor = f.get_tensor(key)
            lora = loras.get(key)
            if lora is not None:
                delta = lora.b.float() @ lora.a.float()
                tensor = tensor.float().add_(delta.T if lora.fan_in_fan_out else delta, alpha=lora.scale)
            yield key, tensor.to(dtype).contiguous() if tensor.is_floating_point() else tensor
            del tensor


def _write_shards(tensors: Any, work: Path, limit: int) -> None:
    from safetensors.torch import save_file

    shard: dict[str, Any] = {}
    size, files, weight_map, total = 0, [], {}, 0
    for key, tensor in tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if shard and size + nbytes > limit:
            files.append(_flush(shard, work, len(files), weight_map, save_file))
            shard, size = {}, 0
        shard[key], size, total = tensor, size + nbytes, total + nbytes
    files.append(_flush(shard, work, len(files), weight_map, save_file))
    if len(files) == 1:
        (work / files[0]).rename(work / "model.safetensors")
        return
    names = {f: f"model-{i + 1:05d}-of-{len(files):05d}.safetensors" for i, f in enumerate(files)}
    for old, new in names.items():
        (work / old).rename(work / new)
    index = {"metadata": {"total_size": total}, "weight_map": {k: names[v] for k, v in weight_map.items()}}
    (work / INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def _flush(shard: dict[str, Any], work: Path, number: int, weight_map: dict[str, str], save_file: Any) -> str:
    name = f"shard-{number:05d}.tmp"
    save_file(shard, str(work / name), metadata={"format": "pt"})
    weight_map.update(dict.fromkeys(shard, name))
    return name


def _copy_side_files(base: Path, work: Path, dtype: Any) -> None:
    """Tokenizer, chat template and configs; ``config.json`` records the merged dtype."""
    from tutor.models import embedded

    for item in base.iterdir():
        if item.is_file() and not item.name.endswith(WEIGHT_SUFFIXES) and item.name != INDEX:
            shutil.copy2(item, work / item.name)
    embedded.repair_tokenizer(work)  # a checkpoint converted before the repair existed
    config = json.loads((work / "config.json").read_text(encoding="utf-8"))
    config.pop("quantization_config", None)  # the merge always starts from 16-bit weights
    config["dtype"] = str(dtype).removeprefix("torch.")
    config.pop("torch_dtype", None)
    (work / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# ---- GGUF ------------------------------------------------------------------------------------------


def llama_cpp_version() -> str:
    """The installed llama-cpp-python version (its sdist carries the matching converter)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError as exc:
        raise ExportError("GGUF export needs llama-cpp-python: `pip install llama-cpp-python`") from exc


def converter() -> Path:
    """``convert_hf_to_gguf.py`` of the installed llama.cpp (see the module docstring for the search order)."""
    tree = os.environ.get("TUTOR_LLAMA_CPP")
    if tree:
        script = Path(tree) / "convert_hf_to_gguf.py"
        if not script.is_file():
            raise ExportError(f"$TUTOR_LLAMA_CPP={tree} holds no convert_hf_to_gguf.py: point it at a llama.cpp tree")
        return script
    from tutor.models import embedded

    home = embedded.cache_dir() / f"llama-cpp-python-{llama_cpp_version()}"
    script = home / "convert_hf_to_gguf.py"
    if not script.is_file():
        _extract(_sdist(), home)
    return script


def _sdist() -> Path:
    given = os.environ.get("TUTOR_LLAMA_CPP_SDIST")
    if given:
        if not Path(given).is_file():
            raise ExportError(f"$TUTOR_LLAMA_CPP_SDIST={given} is not a file: point it at llama_cpp_python-*.tar.gz")
        return Path(given)
    version = llama_cpp_version()
    where = Path(tempfile.mkdtemp(prefix="llama-cpp-sdist-"))
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    command += [f"llama-cpp-python=={version}", "-d", str(where)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = sorted(where.glob("llama_cpp_python-*.tar.gz"))
    if done.returncode != 0 or not found:
        raise ExportError(
            f"could not fetch llama-cpp-python=={version}'s source ({done.stderr.strip()[-300:]}): run "
            "`ta export --prepare` where a package index is reachable, or set TUTOR_LLAMA_CPP_SDIST to the "
            f"llama_cpp_python-{version}.tar.gz file"
        )
    return found[0]


def _extract(sdist: Path, home: Path) -> None:
    """Unpack the converter, its ``conversion`` package and ``gguf-py`` into ``home`` (atomically)."""
    keep = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/gguf/", "LICENSE")
    work = home.with_name(home.name + f".tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar:
            _, marker, inner = member.name.partition("/vendor/llama.cpp/")
            if marker and member.isfile() and inner.startswith(keep):
                member.name = inner
                tar.extract(member, work, filter="data")
    if not (work / "convert_hf_to_gguf.py").is_file():
        raise ExportError(f"{sdist} carries no vendor/llama.cpp/convert_hf_to_gguf.py: is it llama-cpp-python's sdist?")
    home.parent.mkdir(parents=True, exist_ok=True)
    work.rename(home)


def convert(checkpoint: Path, out: Path) -> dict[str, Any]:
    """Run llama.cpp's converter on a checkpoint directory, writing an f16 GGUF file; returns its peak RSS."""
    script = converter()
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}  # use the converter's own gguf-py
    command = [sys.executable, str(script), str(checkpoint), "--outfile", str(out), "--outtype", "f16"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0 or not out.is_file():
        raise ExportError(f"llama.cpp's converter failed on {checkpoint}:\n{done.stderr.strip()[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"convert_peak_rss_mb": round(max(peak, before) / 1024, 1)}


def quantize(source: Path, out: Path, quant: str) -> None:
    """Quantize an f16 GGUF file with the compiled llama.cpp library (``llama_model_quantize``)."""
    import ctypes

    import llama_cpp

    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[quant]
    params.nthread = os.cpu_count() or 1
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0 or not out.is_file():
        raise ExportError(
            f"llama_model_quantize({quant}) failed on {source} (status {status}): check the free disk space, "
            "or export --gguf f16"
        )


def to_gguf(
    run: str | Path,
    quant: str = "q4_k_m",
    *,
    out: str | Path | None = None,
    merged: str | Path | None = None,
    dtype: str = "auto",
    base: str | Path | None = None,
) -> Path:
    """Export a run as one GGUF file (``RUN/gguf/model-QUANT.gguf`` unless ``out`` says otherwise).

    Args:
        run: the run directory.
        quant: ``f16``, ``q8_0`` or ``q4_k_m``.
        out: the GGUF file to write.
        merged: an already merged checkpoint to convert (else one is merged into a temporary directory).
        dtype: merged weights dtype when merging here.
        base: the base checkpoint directory, overriding the one the adapter names.
    """
    if quant not in QUANTS:
        raise ExportError(f"unknown GGUF type {quant!r}: use one of {', '.join(QUANTS)}")
    run = Path(run)
    out = Path(out) if out else run / "gguf" / f"model-{quant}.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    converter()  # fail before the merge if the converter cannot be found
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        source = Path(merged) if merged else merge(run, Path(tmp) / "merged", dtype=dtype, base=base)
        f16 = Path(tmp) / "model-f16.gguf"
        convert(source, f16)
        partial = out.with_name(out.name + ".partial")
        if quant == "f16":
            shutil.move(f16, partial)
        else:
            quantize(f16, partial, quant)
        partial.rename(out)
    return out


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory so far of this process and of its finished children (the converter), in MiB."""
    return {
        "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }
