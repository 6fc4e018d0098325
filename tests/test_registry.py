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
        ("openai:gpt-4o", "not available yet"),
        ("http://localhost:8000/v1", "not available yet"),
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
