"""The teaching-assistant program."""

from __future__ import annotations

import json

import pytest

from tutor.explain import ChatTurnsAdapter, Explain, Tutor, to_history
from tutor.models import FakeModel


def test_history_accepts_pairs_and_messages() -> None:
    pairs = to_history([("q1", "a1")])
    messages = to_history([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}])
    assert pairs.messages == messages.messages == [{"question": "q1", "answer": "a1"}]


def test_adapter_speaks_in_chat_turns() -> None:
    messages = ChatTurnsAdapter().format(
        Explain, demos=[], inputs={"question": "And dropout?", "history": to_history([("What is L2?", "A penalty.")])}
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == Explain.instructions
    assert [m["content"] for m in messages[1:]] == ["What is L2?", "A penalty.", "And dropout?"]
    assert ChatTurnsAdapter().parse(Explain, "  Dropout drops units.\n") == {"answer": "Dropout drops units."}


def test_tutor_logic_with_fake_model() -> None:
    fake = FakeModel(["Overfitting is memorising.", "Like a student who memorises."])
    tutor = Tutor(fake)
    assert tutor(question="What is overfitting?").answer == "Overfitting is memorising."
    streamed = "".join(tutor.stream("An example?", history=[("What is overfitting?", "Overfitting is memorising.")]))
    assert streamed == "Like a student who memorises."
    # The history reached the prompt of the second call.
    assert "Overfitting is memorising." in json.dumps(fake.calls[1][0])
    with pytest.raises(ValueError, match="empty"):
        tutor(question="   ")


def test_tutor_streams_a_real_answer(llama_model) -> None:
    tutor = Tutor(llama_model)
    pieces = list(tutor.stream("What is overfitting?"))
    answer = "".join(pieces)
    assert len(pieces) > 3 and len(answer) > 20
    pred = tutor(question="What is a learning rate?", history=[("What is overfitting?", answer)])
    assert isinstance(pred.answer, str) and pred.answer.strip()
