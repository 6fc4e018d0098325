"""load_model(spec): what each spec loads, and the errors that say what to do."""

from __future__ import annotations

import pytest

from tutor.models import ModelError, load_model
from tutor.models.registry import describe


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/nonexistent/model.gguf", "no model at"),
        ("ftp:something", "unknown model scheme 'ftp'"),
        ("openai:gpt-4o", "is not a URL"),
        ("http://127.0.0.1:9/v1", "is the server running"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_model(spec)


def test_corrupt_gguf_and_wrong_files(tmp_path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelError, match="could not load"):
        load_model(corrupt)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelError, match=r"not a \.gguf file"):
        load_model(text)
    with pytest.raises(ModelError, match=r"neither config\.json nor adapter_config\.json"):
        load_model(tmp_path)
    with pytest.raises(ModelError, match="unknown backend"):
        load_model("default", backend="tpu")


def test_adapter_without_base(tmp_path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="base_model_name_or_path"):
        load_model(tmp_path)


def test_gguf_path_loads_on_llamacpp(llama_model) -> None:
    from tutor.models import embedded

    model = load_model(str(embedded.gguf_path()), self_check=False)
    assert model.backend == "llamacpp"
    assert model.generate("Say yes or no.", ["yes", "no"]) in ("yes", "no")
    model.close()


def test_describe_names_the_default_and_backends() -> None:
    info = describe()
    assert info["default"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert info["backends"]["llamacpp"] is True and info["backends"]["transformers"] is True


def test_resolve_base_one_rule_for_embedded_names_directories_and_hub_ids(tmp_path, monkeypatch) -> None:
    from tutor.models import embedded
    from tutor.models.registry import resolve_base

    checkpoint = tmp_path / "converted"
    monkeypatch.setattr(embedded, "hf_checkpoint", lambda: checkpoint)
    for name in ("default", embedded.NAME, f"HuggingFaceTB/{embedded.NAME}"):
        base = resolve_base(name)
        assert (base.path, base.name, base.local) == (str(checkpoint), embedded.NAME, True), name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    base = resolve_base("mine")
    assert base.path == base.name == str(tmp_path / "mine") and base.local, "a directory by its absolute path"
    assert resolve_base("org/other-model") == type(base)("org/other-model", "org/other-model", local=False)
    with pytest.raises(ModelError, match="no base model named"):
        resolve_base(" ")


def test_finetune_resolves_bases_through_the_registry(tmp_path, monkeypatch) -> None:
    from finetune.export import base_checkpoint
    from finetune.train import resolve_base
    from tutor.models import embedded

    monkeypatch.setattr(embedded, "hf_checkpoint", lambda: tmp_path)
    assert resolve_base("default") == (str(tmp_path), embedded.NAME)
    assert base_checkpoint(f"HuggingFaceTB/{embedded.NAME}") == tmp_path
    assert base_checkpoint(str(tmp_path)) == tmp_path


def test_a_gguf_converted_for_transformers_is_cached_per_file(tmp_path, monkeypatch) -> None:
    """Every fine-tuning run exports ``model-q8_0.gguf``: one run's conversion must never serve another's."""
    import os

    from tutor.models import embedded
    from tutor.models.transformers import TransformersModel

    converted: list = []

    def convert(gguf, target):
        converted.append(target)
        target.mkdir(parents=True)
        (target / "model.safetensors").write_bytes(b"")
        return target

    monkeypatch.setattr(embedded, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(embedded, "convert_gguf", convert)
    monkeypatch.setattr(TransformersModel, "load", classmethod(lambda cls, path, **kw: path))
    first, second = (tmp_path / run / "model-q8_0.gguf" for run in ("run1", "run2"))
    for path in (first, second):
        path.parent.mkdir()
        path.write_bytes(b"GGUF")
    a = load_model(first, backend="transformers", self_check=False)
    b = load_model(second, backend="transformers", self_check=False)
    assert a != b and converted == [a, b], "two runs' files share one conversion"
    assert load_model(first, backend="transformers", self_check=False) == a and len(converted) == 2, "not reused"
    os.utime(first, ns=(1, 1))  # the file exported again: converted again
    assert load_model(first, backend="transformers", self_check=False) != a and len(converted) == 3


def test_options_are_checked_by_name_and_type_before_loading() -> None:
    with pytest.raises(ModelError, match=r"unknown option n_thread; did you mean n_threads\?"):
        load_model("default", n_thread=1)
    with pytest.raises(ModelError, match=r"unknown option n_ctx \(the transformers backend takes grammar_backend"):
        load_model("default", backend="transformers", n_ctx=512)  # checked before the embedded model is converted
    with pytest.raises(ModelError, match=r"deterministic must be True or False, not 'no'"):
        load_model("default", deterministic="no")
    with pytest.raises(ModelError, match="did you mean model"):
        load_model("openai:http://127.0.0.1:9/v1", modle="x")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_threads": 0}, "n_threads must be a whole number from 1 to 512"),
        ({"seed": -1}, "seed must be a whole number from 0 to 4294967295"),
        ({"max_seqs": 1000}, "max_seqs must be a whole number from 1 to 64"),
        ({"n_ctx": 0}, "n_ctx must be a whole number at least 128"),
        ({"n_ctx": 1, "deterministic": False}, "n_ctx must be a whole number at least 128"),  # llama.cpp aborted
        ({"n_ctx": 8193}, "n_ctx=8193 is more than the 8192 tokens SmolLM2-135M-Instruct.Q4_1.gguf was trained on"),
    ],
)
def test_llamacpp_settings_out_of_range_are_refused_before_the_cache_is_made(options: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_model("default", self_check=False, **options)


def test_a_checkpoint_or_adapter_folder_that_cannot_load_is_named(tmp_path) -> None:
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match=r"config\.json holds a JSON list, not an object"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelError, match=r"has a config\.json but no weights"):
        load_model(tmp_path)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": 5}')
    with pytest.raises(ModelError, match="names no base_model_name_or_path"):
        load_model(adapter)
    (adapter / "adapter_config.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ModelError, match="is not readable JSON"):
        load_model(adapter)
