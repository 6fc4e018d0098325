"""A scripted model for fast tests of program logic (never the only test: real-model tests run too).

Its text goes through the same :class:`~tutor.models.base.Model` paths as a real backend, so a
scripted answer that breaks its constraint raises exactly as a real one would. Tokens are characters,
so one-character choices ("A".."D") are single tokens and ``choose`` takes its one-pass path.

Example::

    fake = FakeModel(['{"answer": "4"}'])
    fake.enqueue_choice("B")
    fake.generate("2+2?", {"type": "object"})   # -> '{"answer": "4"}'
    fake.choose(["Which?"], ["A", "B"])[0].answer  # -> "B"
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tutor.models.base import Model, Sampling, SpecialTokens
from tutor.models.constraints import Constraint

Responder = Callable[[list[dict[str, str]], Constraint | None], str]


class _Row:
    """A next-token distribution that puts (almost) all mass on one token."""

    def __init__(self, favourite: int | None) -> None:
        self.favourite = favourite

    def __getitem__(self, token_id: int) -> float:
        return 0.0 if token_id == self.favourite else math.log(1e-3)


class FakeModel(Model):
    """Answers from a queue of scripted texts (or a responder function), and records every call."""

    backend = "fake"

    def __init__(self, responses: Iterable[str | dict[str, Any]] = (), responder: Responder | None = None) -> None:
        self.name = "fake"
        self.responses: deque[str] = deque()
        self.choices: deque[str] = deque()
        self.responder = responder
        self.calls: list[tuple[list[dict[str, str]], Constraint | None, Sampling]] = []
        for response in responses:
            self.enqueue(response)

    def enqueue(self, *responses: str | dict[str, Any]) -> FakeModel:
        """Queue texts to answer with, in order; dicts are sent as JSON."""
        self.responses.extend(r if isinstance(r, str) else json.dumps(r) for r in responses)
        return self

    def enqueue_choice(self, *answers: str) -> FakeModel:
        """Queue the choices ``choose`` will favour, one per prompt, in order (default: the first choice)."""
        self.choices.extend(answers)
        return self

    def _generate(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        self.calls.append((messages, constraint, sampling))
        if self.responses:
            return self.responses.popleft()
        if self.responder is not None:
            return self.responder(messages, constraint)
        raise AssertionError("FakeModel has no scripted response left: enqueue() one or pass a responder")

    def _stream(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> Iterator[str]:
        text = self._generate(messages, constraint, sampling)
        for start in range(0, len(text), 4):
            yield text[start : start + 4]

    def tokenize(self, text: str) -> list[int]:
        """One token per character."""
        return [ord(c) for c in text]

    def render(self, messages: list[dict[str, str]]) -> str:
        """A minimal chat template."""
        return "".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>"

    def special_tokens(self) -> SpecialTokens:
        """No BOS; character 0 ends a text."""
        return SpecialTokens(bos=None, eos=0, add_bos=False)

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list[Any]:
        return [_Row(ord(self.choices.popleft()[0]) if self.choices else None) for _ in prompts]

    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        # Shorter continuations are likelier, as with a real model; enough for logic tests.
        return [-float(len(cont)) for _, cont in pairs]
