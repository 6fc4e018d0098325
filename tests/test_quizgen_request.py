"""QuizRequest: validated and normalised on construction, frozen, a user-fixable error for bad input."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from quizgen.request import MAX_QUESTIONS, SOURCE_MAX_CHARS, QuizRequest, QuizRequestError
from tutor.errors import TutorError


def test_a_request_is_cleaned_and_frozen() -> None:
    request = QuizRequest("  gradient \n descent ", n=3, source_text="  notes  ", seed=1, temperature=0)
    assert request.topic == "gradient descent" and request.source_text == "notes"
    assert request.temperature == 0.0 and isinstance(request.temperature, float)
    assert (request.difficulty, request.kb, request.grounded) == ("medium", None, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.n = 5  # type: ignore[misc]
    assert request.replace(n=5).n == 5 and request.n == 3
    with pytest.raises(QuizRequestError, match="between 1 and"):
        request.replace(n=0)  # a copy is validated like a new request
    assert "notes" not in repr(QuizRequest("x y z", source_text="secret notes")), "a 200k source stays out of logs"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"topic": ""}, "topic is empty"),
        ({"topic": "   \n\t"}, "topic is empty"),
        ({"topic": None}, "topic is empty"),
        ({"topic": "x" * 50_000}, "50,000 characters"),
        ({"n": 0}, f"between 1 and {MAX_QUESTIONS}"),
        ({"n": 1000}, f"between 1 and {MAX_QUESTIONS}"),
        ({"n": True}, f"between 1 and {MAX_QUESTIONS}"),
        ({"n": 2.0}, f"between 1 and {MAX_QUESTIONS}"),
        ({"difficulty": "insane"}, "difficulty must be one of"),
        ({"source_text": "notes\x00\x01binary"}, "binary"),
        ({"source_text": "   "}, "source text is empty"),
        ({"source_text": b"bytes"}, "must be text"),
        ({"source_text": "x" * (SOURCE_MAX_CHARS + 1)}, "pass one chapter"),
        ({"temperature": -1}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"seed": "7"}, "seed"),
        ({"seed": False}, "seed"),
        ({"kb": "../etc"}, "knowledge base"),
        ({"kb": ""}, "knowledge base"),
        ({"kb": "a" * 65}, "knowledge base"),
        ({"grounded": "yes"}, "grounded"),
    ],
)
def test_bad_input_is_a_user_error_saying_what_to_do(fields, message) -> None:
    with pytest.raises(QuizRequestError, match=message) as caught:
        QuizRequest(**{"topic": "overfitting", **fields})
    assert isinstance(caught.value, TutorError) and isinstance(caught.value, ValueError)


def test_limits_at_their_edges_are_accepted() -> None:
    QuizRequest("t" * 200, n=MAX_QUESTIONS, source_text="x" * SOURCE_MAX_CHARS, temperature=2, seed=-3)
    QuizRequest("overfitting", n=1, kb="ml-101_v2.0", grounded=False)


def test_importing_the_request_loads_no_dspy() -> None:
    # The command line and the page read the limits from here; DSPy (seconds to import) loads with the agent.
    code = "import sys, quizgen.request, quizgen; assert 'dspy' not in sys.modules, 'dspy was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_grounded_quiz_is_checked_one_question_at_a_time_on_a_local_model_and_batched_on_a_server():
    from types import SimpleNamespace

    from quizgen.grounded import default_width

    assert default_width(SimpleNamespace(backend="llamacpp", concurrency=4)) == 1  # prompts do not batch on a CPU
    assert default_width(SimpleNamespace(backend="openai", concurrency=8)) == 8  # a server batches them
