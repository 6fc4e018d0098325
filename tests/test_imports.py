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


def test_only_the_page_modules_import_gradio() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for package in ("tutor", "quizgen", "benchmarks", "finetune"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n == "gradio" or n.startswith("gradio.") for n in names):
                    offenders.append(str(path.relative_to(root)))
    assert not offenders, f"only app.py and app_progress.py build the page: {sorted(set(offenders))}"
