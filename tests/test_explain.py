"""The teaching-assistant program."""

from __future__ import annotations

import json

import pytest

from tutor.errors import InputError
from tutor.explain import (
    ChatTurnsAdapter,
    Explain,
    Tutor,
    message_text,
    normalize_history,
    recent,
    to_history,
)
from tutor.models import FakeModel

BROWSER = [  # Gradio 6 sends each message's content as a list of blocks
    {"role": "user", "content": [{"type": "text", "text": "What is a tensor?"}], "metadata": None},
    {"role": "assistant", "content": [{"type": "text", "text": "An array "}, {"type": "text", "text": "of ints."}]},
    {"role": "user", "content": [{"type": "file", "file": {"path": "/tmp/x.png"}}]},  # a file: no text, dropped
]


@pytest.fixture(autouse=True)
def _dspy_keeps_call_history():
    """A server started earlier in the run (the app tests) turns DSPy's call history off for the process."""
    import dspy

    with dspy.context(disable_history=False):
        yield


def test_history_accepts_pairs_and_messages() -> None:
    pairs = to_history([("q1", "a1")])
    messages = to_history([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}])
    assert pairs.messages == messages.messages == [{"question": "q1", "answer": "a1"}]
    assert to_history(BROWSER).messages == [{"question": "What is a tensor?", "answer": "An array of ints."}]
    assert to_history([("q1", "a1"), ("q2", None)]).messages == [{"question": "q1", "answer": "a1"}]


def test_normalize_history_accepts_browser_content_blocks() -> None:
    assert normalize_history(BROWSER) == [
        {"role": "user", "content": "What is a tensor?"},
        {"role": "assistant", "content": "An array of ints."},
    ]


def test_normalize_history_accepts_client_strings_and_pairs() -> None:
    client = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert normalize_history(client) == client
    assert normalize_history([("Q1", "A1"), ("Q2", None)]) == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]
    assert normalize_history(None) == []
    assert normalize_history([{"role": "system", "content": "ignored"}]) == []


def test_message_text_of_each_shape() -> None:
    assert message_text("plain") == "plain"
    assert message_text({"type": "text", "text": "block"}) == "block"
    assert message_text([{"type": "text", "text": "a"}, {"type": "file", "file": {}}, "b"]) == "ab"
    assert message_text(None) == ""


def test_recent_keeps_the_last_exchanges_starting_with_a_question() -> None:
    turns = [{"role": r, "content": f"{r}{i}"} for i in range(6) for r in ("user", "assistant")]
    assert recent(turns, 4) == turns[-4:]
    assert recent(turns, 3) == turns[-2:], "an answer without its question is dropped"
    assert recent(turns, 0) == [] and recent([], 8) == []


def test_the_tutor_reads_browser_history_like_any_other() -> None:
    fake = FakeModel(["A reply."])
    "".join(Tutor(fake).stream("And a matrix?", history=BROWSER))
    contents = [m["content"] for m in fake.calls[0][0]]
    assert contents[1:] == ["What is a tensor?", "An array of ints.", "And a matrix?"]


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
    with pytest.raises(InputError, match="empty"):
        tutor(question="   ")


def test_tutor_streams_a_real_answer(llama_model) -> None:
    tutor = Tutor(llama_model)
    pieces = list(tutor.stream("What is overfitting?"))
    answer = "".join(pieces)
    assert len(pieces) > 3 and len(answer) > 20
    pred = tutor(question="What is a learning rate?", history=[("What is overfitting?", answer)])
    assert isinstance(pred.answer, str) and pred.answer.strip()


def test_a_streamed_answer_is_in_dspys_history_unless_history_is_off() -> None:
    import io

    import dspy

    fake = FakeModel(["Overfitting is memorising noise."])
    tutor = Tutor(fake)
    assert "".join(tutor.stream("What is overfitting?")) == "Overfitting is memorising noise."
    out = io.StringIO()
    tutor.lm.inspect_history(1, file=out)
    assert "What is overfitting?" in out.getvalue() and "memorising noise" in out.getvalue()
    fake.enqueue("Again.")
    with dspy.context(disable_history=True):
        "".join(tutor.stream("And now?"))
    assert len(tutor.lm.history) == 1, "the server turns history off: nothing is kept"
