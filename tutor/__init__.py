"""An AI teaching assistant: one Model API with constrained decoding, and DSPy programs on top.

``import tutor`` stays light (no torch, no gradio, no DSPy): the programs load on first use.

    >>> import tutor
    >>> model = tutor.load_model("default")          # SmolLM2-135M-Instruct, embedded
    >>> model.generate("Name a loss function.", ["cross-entropy", "hinge"])
    >>> tutor.Tutor(model)(question="What is overfitting?").answer
"""

from typing import Any

from tutor.errors import TutorError
from tutor.models import (
    Choice,
    ConstraintViolation,
    FakeModel,
    Model,
    ModelError,
    OutputTypeError,
    Regex,
    load_model,
)

__all__ = [
    "Choice",
    "ConstraintViolation",
    "FakeModel",
    "Model",
    "ModelError",
    "OutputTypeError",
    "Regex",
    "Tutor",
    "TutorEngine",
    "TutorError",
    "load_model",
    "make_lm",
]

_LAZY = {"Tutor": "tutor.explain", "TutorEngine": "tutor.engine", "make_lm": "tutor.engine"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tutor' has no attribute {name!r}")
