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


class Pick(dspy.Signature):
    """Is the concept supervised (S) or unsupervised (U) learning?"""

    concept: str = dspy.InputField()
    family: Literal["S", "U"] = dspy.OutputField()


def test_judgment_shapes() -> None:
    from tutor.engine import judgment_of

    one = {"type": "object", "properties": {"a": {"type": "string", "enum": ["x", "y"]}}, "required": ["a"]}
    assert judgment_of(one) == ("a", ["x", "y"])
    assert judgment_of({"type": "object", "properties": {"a": {"type": "string"}}}) is None
    assert judgment_of({**one, "properties": {**one["properties"], "b": {"type": "string"}}}) is None
    assert judgment_of({"type": "object", "properties": {"a": {"enum": ["only"]}}}) is None
    assert judgment_of(None) is None


def test_a_greedy_judgment_is_read_from_one_forward_pass() -> None:
    """A lone enum output at temperature 0 is answered by Model.choose (no decode); sampled, it is decoded."""
    fake = FakeModel(['{"family": "S"}'])
    fake.enqueue_choice("U")
    with dspy.context(lm=make_lm(fake), adapter=dspy.JSONAdapter()):
        assert dspy.Predict(Pick)(concept="k-means", config={"temperature": 0.0}).family == "U"
        assert fake.calls == [], "choose, not generate"
        assert dspy.Predict(Pick)(concept="k-means", config={"temperature": 0.7}).family == "S"
        assert len(fake.calls) == 1


def _flashcards():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "flashcards.py"
    spec = importlib.util.spec_from_file_location("flashcards_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


PASSAGE = (
    "Dropout is a regularization technique that randomly sets a fraction of a layer's activations to zero during "
    "training. It stops units from relying on each other, which reduces overfitting."
)


def test_flashcards_example_runs_as_written_on_a_scripted_model() -> None:
    module, path = _flashcards()
    assert len(path.read_text().splitlines()) < 30, "the README promises a signature in under 30 lines"
    fake = FakeModel([{"cards": [{"front": "What does dropout zero?", "back": "A fraction of activations"}]}])
    cards = module.flashcards(fake, PASSAGE)
    assert [c.front for c in cards] == ["What does dropout zero?"] and isinstance(cards[0], module.Card)
    schema = fake.calls[0][1].schema
    assert schema["properties"]["cards"]["maxItems"], "the engine bounds the list: the reply always completes"


def test_readme_quotes_the_flashcards_example() -> None:
    from pathlib import Path

    _, path = _flashcards()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert path.read_text().strip() in readme, "README's flashcards guide must quote examples/flashcards.py as is"


@pytest.mark.slow
def test_flashcards_example_on_the_real_model(llama_model) -> None:
    module, _ = _flashcards()
    cards = module.flashcards(llama_model, PASSAGE)
    assert cards and all(isinstance(c, module.Card) and 5 <= len(c.front) <= 120 for c in cards)
