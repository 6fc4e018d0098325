"""Program logic of the base Model, through the scripted FakeModel (real-model tests are separate)."""

from __future__ import annotations

import pytest

from tutor.models import ConstraintViolation, FakeModel, to_messages
from tutor.models.base import split_continuation


def test_messages_normalise_and_reject_bad_roles() -> None:
    assert to_messages("hi") == [{"role": "user", "content": "hi"}]
    with pytest.raises(ValueError, match="role"):
        to_messages([{"role": "wizard", "content": "x"}])
    with pytest.raises(ValueError, match="no messages"):
        to_messages([])


def test_invalid_scripted_output_is_retried_once_then_raises() -> None:
    fake = FakeModel(['{"a": 1', '{"a": 1}'])
    assert fake.generate("x", {"type": "object", "properties": {"a": {"type": "integer"}}}, max_tokens=10) == '{"a": 1}'
    # The retry doubled the token budget.
    assert [call[2].max_tokens for call in fake.calls] == [10, 20]
    fake = FakeModel(["nope", "still nope"])
    with pytest.raises(ConstraintViolation):
        fake.generate("x", ["yes", "no"])


def test_stream_checks_the_joined_text() -> None:
    fake = FakeModel(['{"answer": "forty two"}', "bad"])
    assert "".join(fake.stream("q", {"type": "object"})) == '{"answer": "forty two"}'
    with pytest.raises(ConstraintViolation):
        list(fake.stream("q", ["good"]))


def test_choose_reads_one_distribution_per_prompt() -> None:
    fake = FakeModel().enqueue_choice("C", "A")
    picks = fake.choose(["q1", "q2"], ["A", "B", "C", "D"])
    assert [p.answer for p in picks] == ["C", "A"]
    assert abs(sum(picks[0].probs.values()) - 1) < 1e-9
    assert picks[0].probs["C"] > 0.9


def test_choose_falls_back_to_loglikelihood_for_multi_token_choices() -> None:
    # Fake loglikelihood prefers shorter continuations; "no" is two tokens, "maybe" five.
    picks = FakeModel().choose(["q"], [["maybe", "no"]])
    assert picks[0].answer == "no"
    assert picks[0].logprobs == {"maybe": -5.0, "no": -2.0}


def test_choose_rejects_bad_choices() -> None:
    with pytest.raises(ValueError, match="distinct"):
        FakeModel().choose(["q"], ["A", "A"])
    with pytest.raises(ValueError, match="2 prompts but 1"):
        FakeModel().choose(["q", "r"], [["A", "B"]])


def test_continuation_split_moves_the_context_space_to_the_answer() -> None:
    fake = FakeModel()
    ctx, cont = split_continuation(fake, "Answer: ", "A")
    assert fake.tokenize("Answer:") == ctx
    assert cont == [ord(" "), ord("A")]
