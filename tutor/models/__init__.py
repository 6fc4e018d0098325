"""One Model API over llama.cpp and transformers, with constrained decoding (see ``base.py``)."""

from tutor.models.base import Choice, Model, ModelError, Sampling, to_messages
from tutor.models.constraints import ConstraintViolation, OutputTypeError, Regex, to_constraint
from tutor.models.fake import FakeModel
from tutor.models.registry import describe, load_model

__all__ = [
    "Choice",
    "ConstraintViolation",
    "FakeModel",
    "Model",
    "ModelError",
    "OutputTypeError",
    "Regex",
    "Sampling",
    "describe",
    "load_model",
    "to_constraint",
    "to_messages",
]
