"""The teaching-assistant program: explain a concept or answer a student's question, with history.

:class:`Tutor` is an ordinary ``dspy.Module`` over one signature, so DSPy optimizers work on it
unchanged. It speaks to the model through :class:`ChatTurnsAdapter`: the signature's instructions
become the system prompt, demos and history become real chat turns, and the reply is plain prose.
A small instruction-tuned model answers far better in the chat format it was trained on than
inside a JSON envelope, and prose needs no parsing, so nothing can fail to parse.
``forward`` runs through ``dspy.LM`` (our engine); ``stream`` sends the very same messages to the
model and yields the answer as it is decoded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dspy

from tutor.errors import InputError
from tutor.models.base import Model

INSTRUCTIONS = """You are a patient, precise teaching assistant for a machine-learning course.
Answer the student's question or explain the concept they name: start with the core idea in one or two
plain sentences, then give an intuition or a small concrete example. Use the conversation for follow-up
questions. Be correct and brief (under 150 words); if you are not sure, say so instead of inventing facts."""

ANSWER_MAX_TOKENS = 256
ANSWER_SAMPLING = {"repetition_penalty": 1.15}  # a 135M model otherwise repeats its first sentence


class Explain(dspy.Signature):  # noqa: D101 - its docstring is INSTRUCTIONS, which DSPy reads
    __doc__ = INSTRUCTIONS

    history: dspy.History = dspy.InputField(desc="the conversation so far")
    question: str = dspy.InputField(desc="the student's question, or a concept to explain")
    answer: str = dspy.OutputField(desc="the teaching assistant's reply, in plain prose")


class ChatTurnsAdapter(dspy.Adapter):
    """A DSPy adapter for signatures with one text output, in the model's own chat format.

    System message: the signature's instructions. User turns: the input fields (a lone field as its
    bare value). Assistant turns: the output field's value. The whole reply is the output field.
    """

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        """The instructions alone: field markers would only confuse a small model."""
        return signature.instructions

    def format_field_description(self, signature: type[dspy.Signature]) -> str:
        """Nothing: the chat format needs no field descriptions."""
        return ""

    def format_field_structure(self, signature: type[dspy.Signature]) -> str:
        """Nothing: the reply is plain prose."""
        return ""

    def format_task_description(self, signature: type[dspy.Signature]) -> str:
        """The signature's instructions."""
        return signature.instructions

    def format_user_message_content(
        self,
        signature: type[dspy.Signature],
        inputs: dict[str, Any],
        prefix: str = "",
        suffix: str = "",
        main_request: bool = False,
    ) -> str:
        """The input values; named when there is more than one."""
        # By annotation, not value: a demo read back from a saved program holds its history as a plain dict.
        fields = signature.input_fields
        names = [n for n in fields if n in inputs and fields[n].annotation is not dspy.History]
        if len(names) == 1:
            body = str(inputs[names[0]])
        else:
            body = "\n".join(f"{n}: {inputs[n]}" for n in names)
        return "\n".join(part for part in (prefix, body, suffix) if part)

    def format_assistant_message_content(
        self, signature: type[dspy.Signature], outputs: dict[str, Any], missing_field_message: str | None = None
    ) -> str:
        """The output field's value."""
        return str(outputs.get(_output_name(signature), missing_field_message or ""))

    def parse(self, signature: type[dspy.Signature], completion: str) -> dict[str, Any]:
        """The whole reply is the one output field."""
        return {_output_name(signature): completion.strip()}


def _output_name(signature: type[dspy.Signature]) -> str:
    names = list(signature.output_fields)
    if len(names) != 1 or signature.output_fields[names[0]].annotation is not str:
        raise ValueError(f"ChatTurnsAdapter serves signatures with one str output field, not {names}")
    return names[0]


HISTORY_MESSAGES = 8  # the model sees the last 4 exchanges: older turns would crowd its 2k-token context


def message_text(content: Any) -> str:
    """The text of one message's content: a string, a content block, or a list of blocks (files are dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", "")) if content.get("type", "text") == "text" else ""
    if isinstance(content, list | tuple):
        return "".join(message_text(block) for block in content)
    return ""


def normalize_history(turns: Sequence[Any] | None) -> list[dict[str, str]]:
    """Chat history, in any shape a caller sends, as plain ``{"role", "content": str}`` messages.

    Accepted: role/content dicts whose content is a string (gradio_client, our own state) or a list of blocks
    (``[{"type": "text", "text": ...}]``, as the browser sends Gradio 6 messages), and ``(question, answer)``
    pairs (``ta chat``). Empty, non-text and system messages are dropped: the model only sees the conversation.
    """
    messages: list[dict[str, str]] = []
    for turn in turns or []:
        if isinstance(turn, dict):
            pairs = [(str(turn.get("role", "")), turn.get("content"))]
        else:
            question, answer = turn
            pairs = [("user", question), ("assistant", answer)]
        for role, content in pairs:
            text = message_text(content).strip()
            if role in ("user", "assistant") and text:
                messages.append({"role": role, "content": text})
    return messages


def recent(messages: list[dict[str, str]], limit: int = HISTORY_MESSAGES) -> list[dict[str, str]]:
    """The last ``limit`` messages, starting at a user message so no answer is cut from its question."""
    tail = messages[-limit:] if limit > 0 else []
    while tail and tail[0]["role"] != "user":
        tail = tail[1:]
    return tail


def to_history(turns: Sequence[Any] | None) -> dspy.History:
    """Chat turns (any shape :func:`normalize_history` accepts) as a dspy.History of question/answer pairs."""
    pairs: list[dict[str, str]] = []
    question: str | None = None
    for message in normalize_history(turns):
        if message["role"] == "user":
            question = message["content"]  # a question left unanswered is dropped
        elif question is not None:
            pairs.append({"question": question, "answer": message["content"]})
            question = None
    return dspy.History(messages=pairs)


class Tutor(dspy.Module):
    """The teaching assistant. ``Tutor(model)``; ``tutor(question=...)``; ``tutor.stream(question)``."""

    def __init__(self, model: Model, adapter: dspy.Adapter | None = None) -> None:
        super().__init__()
        from tutor.engine import make_lm

        self.model = model
        self.adapter = adapter or ChatTurnsAdapter()
        self.respond = dspy.Predict(Explain)
        self.lm = make_lm(model, sampling=ANSWER_SAMPLING, max_tokens=ANSWER_MAX_TOKENS)

    def __deepcopy__(self, memo: dict[int, Any]) -> Tutor:
        """A copy with its own predictor (what an optimizer tunes), sharing the model and the LM."""
        import copy

        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.respond = copy.deepcopy(self.respond, memo)
        return new

    def forward(
        self, question: str, history: Sequence[Any] | None = None, config: dict[str, Any] | None = None
    ) -> dspy.Prediction:
        """Answer ``question`` given ``history``; returns a Prediction with ``answer``.

        ``config`` holds per-call sampling for the LM (``{"seed": 3, "temperature": 0.7}``).
        """
        question = _check_question(question)
        with dspy.context(lm=self.lm, adapter=self.adapter):
            return self.respond(question=question, history=to_history(history), config=config or {})

    def messages(self, question: str, history: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """The chat the model sees for ``question``: what ``forward`` sends through DSPy."""
        inputs = {"question": _check_question(question), "history": to_history(history)}
        return self.adapter.format(self.respond.signature, demos=self.respond.demos, inputs=inputs)

    def stream(self, question: str, history: Sequence[Any] | None = None, **sampling: Any) -> Iterator[str]:
        """Yield the answer's text as it is decoded (the pieces join to the full answer).

        The messages are the ones ``forward`` sends through DSPy (the adapter formats them, with whatever demos
        and instructions an optimizer or a loaded program put there). DSPy 3.4 streams only through
        ``dspy.streamify``, whose listeners look for field markers a prose reply does not have, so the pieces come
        from the model directly; the finished call is recorded in the LM's history, where ``inspect_history``
        shows it like any other (unless history is off, as on the server).
        """
        from dspy.clients.base_lm import record_history

        messages = self.messages(question, history)
        sampling = {**ANSWER_SAMPLING, "max_tokens": ANSWER_MAX_TOKENS, **sampling}
        pieces = []
        for piece in self.model.stream(messages, **sampling):
            pieces.append(piece)
            yield piece
        record_history(self.lm, _history_entry(self.lm, messages, sampling, "".join(pieces)))


def _history_entry(lm: Any, messages: list[dict[str, Any]], sampling: dict[str, Any], text: str) -> dict[str, Any]:
    """A DSPy history entry for a call made outside ``dspy.LM`` (the shape ``dspy.inspect_history`` reads)."""
    import datetime
    import uuid

    return {
        "prompt": None,
        "messages": messages,
        "kwargs": dict(sampling),
        "response": None,
        "outputs": [text],
        "usage": {},
        "cost": None,
        "timestamp": datetime.datetime.now().isoformat(),
        "uuid": str(uuid.uuid4()),
        "model": lm.model,
        "response_model": lm.model,
        "model_type": "chat",
    }


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty: type a question or a concept to explain")
    return question.strip()
