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
