"""Shared fixtures: the real embedded model on both backends (session-scoped), isolated state.

Tiers: the default run needs no network and no GPU; ``-m slow`` and ``-m gpu`` are opt-in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TUTOR_DATA", ROOT.parent / "shared" / "data"))

# Converted checkpoints are cached inside the repository (git-ignored), never in the home directory.
os.environ.setdefault("TUTOR_CACHE", str(ROOT / ".cache" / "tutor"))
os.environ.setdefault("DSPY_CACHEDIR", str(ROOT / ".cache" / "dspy"))
# Knowledge bases (the starter course's index included) live in the repository's cache, never in the home directory.
os.environ.setdefault("TA_DATA_DIR", str(ROOT / ".cache" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``slow`` and ``gpu`` tests unless their marker is asked for with ``-m``."""
    wanted = config.getoption("-m") or ""
    for item in items:
        for marker in ("slow", "gpu"):
            if marker in item.keywords and marker not in wanted:
                item.add_marker(pytest.mark.skip(reason=f"{marker} tier: run with -m {marker}"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real data files (../shared/data); tests that need them skip if absent."""
    if not DATA.is_dir():
        pytest.skip(f"no data directory at {DATA}: set TUTOR_DATA")
    return DATA


@pytest.fixture(scope="session")
def llama_model():
    """The embedded SmolLM2-135M-Instruct on llama.cpp, self-checked."""
    from tutor.models import load_model

    model = load_model("default")
    yield model
    model.close()


@pytest.fixture(scope="session")
def hf_model():
    """The same embedded model on transformers (converted once to safetensors in TUTOR_CACHE)."""
    from tutor.models import load_model

    return load_model("default", backend="transformers")


@pytest.fixture(params=["llamacpp", "transformers"])
def any_model(request: pytest.FixtureRequest):
    """Each real backend in turn."""
    return request.getfixturevalue("llama_model" if request.param == "llamacpp" else "hf_model")


@pytest.fixture(autouse=True)
def _reset_dspy():
    """DSPy settings are global: every test starts from a clean configuration."""
    yield
    try:
        import dspy
    except ImportError:
        return
    dspy.settings.configure(lm=None, adapter=None)
