"""Export: the converter is found offline; slow tier (CI runs it): a 30-step run on the shared ShareGPT sample, the f16
GGUF (llama.cpp greedy output equals the merged model's), q8_0 and q4_k_m (their file type, size, an answer)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from finetune import export
from finetune.config import CONFIGS
from tutor.errors import TutorError

PROMPTS = ["What is overfitting?", "Name three primary colors.", "Explain what a neural network is in one sentence."]


def _tar(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_converter_is_extracted_from_the_sdist_without_network(tmp_path: Path, monkeypatch):
    root = "llama_cpp_python-9.9.9/vendor/llama.cpp/"
    sdist = _tar(
        tmp_path / "llama_cpp_python-9.9.9.tar.gz",
        {
            root + "convert_hf_to_gguf.py": "print('converter')",
            root + "conversion/__init__.py": "",
            root + "gguf-py/gguf/__init__.py": "",
            root + "ggml/src/big.c": "not needed",
            "llama_cpp_python-9.9.9/llama_cpp/__init__.py": "",
        },
    )
    monkeypatch.setenv("TUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TUTOR_LLAMA_CPP_SDIST", str(sdist))
    monkeypatch.delenv("TUTOR_LLAMA_CPP", raising=False)
    monkeypatch.setattr(export, "llama_cpp_version", lambda: "9.9.9")
    script = export.converter()
    assert script == tmp_path / "cache" / "llama-cpp-python-9.9.9" / "convert_hf_to_gguf.py"
    kept = sorted(str(p.relative_to(script.parent)) for p in script.parent.rglob("*") if p.is_file())
    assert kept == ["conversion/__init__.py", "convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py"]
    sdist.unlink()  # once extracted, nothing is fetched again
    assert export.converter() == script


def test_converter_errors_say_what_to_do(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TUTOR_LLAMA_CPP", str(tmp_path))
    with pytest.raises(export.ExportError, match=r"holds no convert_hf_to_gguf\.py"):
        export.converter()
    monkeypatch.delenv("TUTOR_LLAMA_CPP")
    monkeypatch.setenv("TUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TUTOR_LLAMA_CPP_SDIST", str(tmp_path / "missing.tar.gz"))
    with pytest.raises(export.ExportError, match=r"TUTOR_LLAMA_CPP_SDIST=.* is not a file"):
        export.converter()
    with pytest.raises(export.ExportError, match="unknown GGUF type"):
        export.to_gguf(tmp_path, "q2_k")
    with pytest.raises(export.ExportError, match="no adapter in") as caught:
        export.merge(tmp_path, tmp_path / "merged")
    assert isinstance(caught.value, TutorError) and isinstance(caught.value, ValueError)  # one line in `ta`


def test_export_cli_needs_a_target(tmp_path: Path, capsys):
    from tutor.cli import main

    assert main(["export", str(tmp_path)]) == 2
    assert "--merged DIR and/or --gguf" in capsys.readouterr().err


# ---- slow tier -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from tutor.cli import main

    out = tmp_path_factory.mktemp("long") / "run"
    data = str(data_dir / "instruct" / "sharegpt_sample.jsonl")
    sets = ["max_seq_len=160", "batch_size=2", "eval_size=8", "eval_steps=15"]
    args = ["finetune", str(CONFIGS / "smollm2-135m-lora-cpu.yaml"), "--data", data, "--out", str(out), "--quiet"]
    assert main(args + [a for kv in sets for a in ("--set", kv)]) == 0
    return out


@pytest.mark.slow
@pytest.mark.real_model  # trains and runs the embedded model
def test_thirty_steps_lower_the_eval_loss(long_run: Path):
    summary = json.loads((long_run / "run.json").read_text())
    assert summary["steps"] == 30
    evals = [
        r["eval_loss"]
        for r in map(json.loads, (long_run / "metrics.jsonl").read_text().splitlines())
        if "eval_loss" in r
    ]
    assert len(evals) >= 3  # before, at step 15, at step 30
    assert summary["eval_loss_after"] < summary["eval_loss_before"] - 0.02, evals


@pytest.mark.slow
@pytest.mark.real_model
def test_gguf_export_matches_the_merged_model_greedily(long_run: Path, tmp_path: Path):
    import gguf

    from tutor.models import load_model

    merged = export.merge(long_run, tmp_path / "merged")
    path = export.to_gguf(long_run, "f16", out=tmp_path / "model-f16.gguf", merged=merged)
    reader = gguf.GGUFReader(str(path))
    template = reader.fields["tokenizer.chat_template"]
    assert "<|im_start|>" in bytes(template.parts[template.data[0]]).decode()
    hf = load_model(merged, backend="transformers")
    cpp = load_model(path)
    assert cpp.backend == "llamacpp"
    for prompt in PROMPTS:
        want = hf.generate(prompt, max_tokens=20)
        got = cpp.generate(prompt, max_tokens=20)
        assert want and got == want, (prompt, want, got)
    cpp.close()


# llama.cpp's file types (general.file_type) and the most a file of each may weigh per weight of the 135M model.
QUANTS = {"q8_0": (7, 1.2), "q4_k_m": (15, 1.0)}


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.parametrize("quant", sorted(QUANTS))
def test_quantized_gguf_is_that_type_loads_and_answers(long_run: Path, tmp_path: Path, quant: str):
    import gguf

    from tutor.models import load_model

    path = export.to_gguf(long_run, quant, out=tmp_path / f"model-{quant}.gguf")
    file_type, bytes_per_weight = QUANTS[quant]
    field = gguf.GGUFReader(str(path)).fields["general.file_type"]
    assert int(field.parts[field.data[0]][0]) == file_type, f"{path.name} is not {quant}"
    assert path.stat().st_size < bytes_per_weight * 135e6  # f16 is two bytes a weight
    model = load_model(path)
    assert model.generate(PROMPTS[0], max_tokens=16).strip()
    model.close()
