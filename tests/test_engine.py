"""The DSPy engine: response_format -> constrained decoding, through dspy.Predict."""

from __future__ import annotations

from typing import Literal

import dspy
import pytest

from tutor.engine import TutorEngine, constraint_of, make_lm
from tutor.models import FakeModel
from tutor.models.constraints import OutputTypeError


class Triage(dspy.Signature):
    """Classify a machine-learning concept and name examples."""

    concept: str = dspy.InputField()
    category: Literal["supervised", "unsupervised", "reinforcement"] = dspy.OutputField()
    confidence: float = dspy.OutputField()
    examples: list[str] = dspy.OutputField(desc="two example algorithms")
    summary: str = dspy.OutputField()


def test_response_format_shapes() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert constraint_of({"type": "json_schema", "name": "X", "schema": schema, "strict": True}) == schema
    assert constraint_of({"type": "json_schema", "json_schema": {"name": "X", "schema": schema}}) == schema
    assert constraint_of({"type": "json_object"}) == {"type": "object"}
    assert constraint_of(None) is None
    with pytest.raises(OutputTypeError, match="unsupported response_format"):
        constraint_of({"type": "xml"})
    with pytest.raises(OutputTypeError, match="carries no schema"):
        constraint_of({"type": "json_schema", "name": "X"})


def test_predict_passes_schema_and_sampling_to_the_model() -> None:
    fake = FakeModel([{"category": "unsupervised", "confidence": 0.8, "examples": ["k-means"], "summary": "s"}])
    with dspy.context(lm=make_lm(fake, temperature=0.7, max_tokens=123), adapter=dspy.JSONAdapter()):
        pred = dspy.Predict(Triage)(concept="clustering")
    assert pred.category == "unsupervised" and pred.examples == ["k-means"]
    messages, constraint, sampling = fake.calls[0]
    assert set(constraint.schema["properties"]) == {"category", "confidence", "examples", "summary"}
    assert sampling.temperature == 0.7 and sampling.max_tokens == 123
    assert "clustering" in messages[-1]["content"]


def test_engine_streams_events() -> None:
    from dspy.lm15 import Message, Request

    engine = TutorEngine(FakeModel(["hello world, streamed"]))
    events = list(engine.stream(Request(model="tutor", messages=(Message.user("hi"),))))
    assert next(e.type for e in events) == "start" and events[-1].type == "end"
    assert "".join(e.delta.text for e in events if e.type == "delta") == "hello world, streamed"


@pytest.mark.parametrize("backend", ["llamacpp", "transformers"])
def test_predict_multi_field_signature_parses_on_the_real_model(backend, request) -> None:
    model = request.getfixturevalue("llama_model" if backend == "llamacpp" else "hf_model")
    with dspy.context(lm=make_lm(model, max_tokens=300), adapter=dspy.JSONAdapter()):
        for concept in ("k-means clustering", "Q-learning"):
            pred = dspy.Predict(Triage)(concept=concept)
            assert pred.category in ("supervised", "unsupervised", "reinforcement")
            assert isinstance(pred.confidence, float)
            assert isinstance(pred.examples, list) and all(isinstance(e, str) for e in pred.examples)
            assert isinstance(pred.summary, str)
