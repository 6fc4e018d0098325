"""The teaching-assistant program: explain a concept or answer a student's question, with history.

:class:`Tutor` is an ordinary ``dspy.Module`` over one signature, so DSPy optimizers work on it
unchanged. ``forward`` runs through ``dspy.LM`` (our engine; the JSON answer is constrained, so it
always parses). ``stream`` formats the very same prompt with the same adapter and demos, streams it
from the model, and yields the answer field's text as it is decoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import dspy

from tutor.models.base import Model

INSTRUCTIONS = """You are a patient, precise teaching assistant for a machine-learning course.
Answer the student's question or explain the concept they name: start with the core idea in one or two
plain sentences, then give an intuition or a small concrete example, and name a common misconception when
there is one. Use the conversation history for follow-up questions. Be correct and brief (under 200
words); if you are not sure, say so instead of inventing facts."""

ANSWER_MAX_TOKENS = 400


class Explain(dspy.Signature):
    __doc__ = INSTRUCTIONS

    history: dspy.History = dspy.InputField(desc="the conversation so far")
    question: str = dspy.InputField(desc="the student's question, or a concept to explain")
    answer: str = dspy.OutputField(desc="the teaching assistant's reply, in plain prose")


def to_history(turns: Sequence[Any] | None) -> dspy.History:
    """Chat turns as a dspy.History: accepts (question, answer) pairs or role/content message dicts."""
    messages: list[dict[str, str]] = []
    pending: str | None = None
    for turn in turns or []:
        if isinstance(turn, dict):
            if turn.get("role") == "user":
                pending = str(turn.get("content", ""))
            elif turn.get("role") == "assistant" and pending is not None:
                messages.append({"question": pending, "answer": str(turn.get("content", ""))})
                pending = None
        else:
            question, answer = turn
            messages.append({"question": str(question), "answer": str(answer or "")})
    return dspy.History(messages=messages)


class Tutor(dspy.Module):
    """The teaching assistant. ``Tutor(model)``; ``tutor(question=...)``; ``tutor.stream(question)``."""

    def __init__(self, model: Model, adapter: dspy.Adapter | None = None) -> None:
        super().__init__()
        from tutor.engine import make_lm

        self.model = model
        self.adapter = adapter or dspy.JSONAdapter()
        self.respond = dspy.Predict(Explain)
        self.lm = make_lm(model, max_tokens=ANSWER_MAX_TOKENS)

    def forward(self, question: str, history: Sequence[Any] | None = None) -> dspy.Prediction:
        """Answer ``question`` given ``history``; returns a Prediction with ``answer``."""
        question = _check_question(question)
        with dspy.context(lm=self.lm, adapter=self.adapter):
            return self.respond(question=question, history=to_history(history))

    def stream(self, question: str, history: Sequence[Any] | None = None, **sampling: Any) -> Iterator[str]:
        """Yield the answer's text as it is decoded (the pieces join to the full answer)."""
        question = _check_question(question)
        signature = self.respond.signature
        messages = self.adapter.format(
            signature, demos=self.respond.demos, inputs={"question": question, "history": to_history(history)}
        )
        schema = {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
            "additionalProperties": False,
        }
        sampling.setdefault("max_tokens", ANSWER_MAX_TOKENS)
        reader = JsonFieldReader()
        for piece in self.model.stream(messages, schema, **sampling):
            text = reader.feed(piece)
            if text:
                yield text


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty: type a question or a concept to explain")
    return question.strip()


class JsonFieldReader:
    """Reads the value of the one string field of a streamed ``{"field": "..."}`` document, as it grows."""

    def __init__(self) -> None:
        self.raw = ""
        self.emitted = 0

    def feed(self, piece: str) -> str:
        """Add streamed JSON text; return the newly decoded part of the string value."""
        self.raw += piece
        value = _partial_string(self.raw)
        new = value[self.emitted :]
        self.emitted = len(value)
        return new


def _partial_string(raw: str) -> str:
    start = raw.find('"', raw.find(":") + 1) if ":" in raw else -1
    if start < 0:
        return ""
    body = raw[start + 1 :]
    end = _closing_quote(body)
    if end is not None:
        body = body[:end]
    # Drop a trailing, incomplete escape so the prefix decodes.
    for cut in range(0, 7):
        candidate = body[: len(body) - cut] if cut else body
        try:
            return json.loads(f'"{candidate}"')
        except json.JSONDecodeError:
            continue
    return ""


def _closing_quote(body: str) -> int | None:
    escaped = False
    for i, ch in enumerate(body):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return i
    return None
