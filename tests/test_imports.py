"""Layering: `import tutor` stays light; the llama.cpp path never imports torch."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return set(out.split())


def test_import_tutor_is_light() -> None:
    loaded = _modules_after("import tutor")
    assert not {"torch", "trl", "gradio", "dspy"} & loaded


def test_llamacpp_path_never_imports_torch() -> None:
    loaded = _modules_after(
        "from tutor.models import load_model\n"
        "m = load_model('default')\n"
        "m.generate('hi', {'type': 'object', 'properties': {'a': {'type': 'integer'}}}, max_tokens=12)\n"
        "m.choose(['A or B?'], ['A', 'B'])"
    )
    assert "llama_cpp" in loaded
    assert "torch" not in loaded
