"""The one Model API every backend implements, and the types it returns.

Four calls, the same on every backend:

* :meth:`Model.generate` and :meth:`Model.stream`: chat in, text out; with an ``output_type`` the text
  always satisfies it (or :class:`ConstraintViolation` is raised: a model is never allowed to hand on
  text that breaks its constraint).
* :meth:`Model.choose`: many multiple-choice prompts at once; each answer is read from ONE forward pass
  over the prompt (the next-token distribution restricted to the allowed choices).
* :meth:`Model.loglikelihood`: log P(continuation | context), summed over the continuation's tokens,
  split into tokens the way lm-evaluation-harness splits them.

Backends implement a handful of small primitives (``_generate``, ``_stream``, ``tokenize``,
``render``, ``special_tokens``, ``_next_token_logprobs``, ``_loglikelihood_tokens``); the checks, the
retries, the choice logic and the rule for how a prompt's tokens start (:meth:`Model.start`) live here once.
"""

from __future__ import annotations

import contextlib
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from tutor.errors import InputError, TutorError
from tutor.models.constraints import (
    Choices,
    Constraint,
    ConstraintViolation,
    Json,
    OutputType,
    Pattern,
    to_constraint,
)

Message = Mapping[str, str]
Messages = str | Sequence[Message]
ROLES = ("system", "user", "assistant")


class ModelError(TutorError, RuntimeError):
    """A model could not be loaded or run; the message says what to do."""


@dataclass(frozen=True)
class Sampling:
    """How to decode. ``temperature == 0`` is greedy."""

    max_tokens: int = 512  # hard cap on generated tokens
    temperature: float = 0.0  # 0 = greedy (argmax); > 0 samples
    top_p: float = 1.0  # nucleus sampling mass, used only when temperature > 0
    seed: int | None = None  # makes sampling repeatable on one backend and machine
    repetition_penalty: float = 1.0  # > 1 discourages tokens already generated (small models loop)

    def __post_init__(self) -> None:
        # Explicit checks, not asserts: these values come from users (flags, API calls) and asserts vanish under -O.
        if not (_whole(self.max_tokens) and self.max_tokens >= 1):
            raise InputError(f"max_tokens must be a whole number >= 1, got {self.max_tokens!r}")
        if not (_finite(self.temperature) and self.temperature >= 0):
            raise InputError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if not (_finite(self.top_p) and 0 < self.top_p <= 1):
            raise InputError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not (_finite(self.repetition_penalty) and self.repetition_penalty > 0):
            raise InputError(f"repetition_penalty must be a finite number > 0, got {self.repetition_penalty!r}")
        if self.seed is not None and not (_whole(self.seed) and self.seed >= 0):
            raise InputError(f"seed must be a whole number >= 0 or None, got {self.seed!r}")

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Sampling:
        """The sampling that keyword ``settings`` ask for; an unknown name (a typo) is an InputError listing them."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise InputError(f"unknown sampling setting(s) {', '.join(unknown)}: use {', '.join(names)}")
        return cls(**settings)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str, what: str) -> str:
    """``text``, refused when a tokenizer cannot encode it (a lone surrogate, from a broken escape)."""
    if _SURROGATE.search(text):
        raise InputError(f"{what} holds a lone surrogate (a broken \\uD8xx escape): send UTF-8 text")
    return text


@dataclass(frozen=True)
class SpecialTokens:
    """What a backend reports about its vocabulary for the rule of how a prompt starts (:meth:`Model.start`)."""

    bos: int | None  # the beginning-of-sequence token, if the vocabulary has one
    eos: int  # the end-of-sequence token
    add_bos: bool  # the model's tokenizer starts every text with bos (GGUF add_bos_token, an HF post-processor)


@dataclass(frozen=True)
class Choice:
    """One multiple-choice answer read off the model's distribution."""

    answer: str  # the allowed choice the model ranks first
    probs: dict[str, float]  # every allowed choice -> probability, renormalised over the choices
    logprobs: dict[str, float] = field(default_factory=dict)  # raw log-probabilities under the model


def to_messages(messages: Messages) -> list[dict[str, str]]:
    """Normalise a prompt: a plain string is one user message; roles and contents are checked."""
    if isinstance(messages, str):
        return [{"role": "user", "content": _encodable(messages, "the prompt")}]
    out = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InputError(f"message {i} has role {role!r}; use one of {ROLES}")
        if not isinstance(content, str):
            raise InputError(f"message {i} content must be a string, got {type(content).__name__}")
        out.append({"role": role, "content": _encodable(content, f"message {i}")})
    if not out:
        raise InputError("no messages: pass a string or a list of {'role': ..., 'content': ...} dicts")
    return out


def split_continuation(model: Model, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Tokenise a (context, continuation) pair as lm-evaluation-harness does.

    Trailing spaces of the context move to the continuation (" A" and "A" are different tokens, and
    the space belongs to the answer), then the continuation's tokens are whatever the whole text
    has beyond the context's tokens.
    """
    stripped = context.rstrip(" ")
    continuation = context[len(stripped) :] + continuation
    whole = model.tokenize(stripped + continuation)
    ctx = model.tokenize(stripped)
    if not continuation:
        raise InputError("empty continuation: nothing to score")
    return ctx, whole[len(ctx) :]


def _bounded(constraint: Constraint | None, sampling: Sampling) -> Constraint | None:
    return constraint.bounded(sampling.max_tokens) if isinstance(constraint, Json) else constraint


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


class Model(ABC):
    """A language model behind the one API. Subclasses: see the module docstring."""

    name: str = "model"  # what the model is, for logs and run configs
    backend: str = "base"  # which backend file serves it
    # Requests the backend decodes at once when called from that many threads (llama.cpp: its max_seqs, batched);
    # more callers wait their turn inside it. A server sizes its worker pool by it.
    concurrency: int = 1

    # ---- the public API -------------------------------------------------------------------------

    def generate(self, messages: Messages, output_type: OutputType = None, **sampling: Any) -> str:
        """Answer a chat; with ``output_type`` the returned text always satisfies it.

        Args:
            messages: a user message as a string, or a list of ``{"role", "content"}`` dicts.
            output_type: a pydantic model, JSON schema (dict or Path), list of choices, Regex, or None.
            **sampling: fields of :class:`Sampling` (max_tokens, temperature, top_p, seed).

        Raises:
            ConstraintViolation: if even a retry with twice the token budget ends invalid
                (a long JSON cut off by ``max_tokens``): raise ``max_tokens`` or bound the schema.
        """
        params = Sampling.of(sampling)
        constraint = _bounded(to_constraint(output_type), params)
        text = self._generate(to_messages(messages), constraint, params)
        if constraint is None:
            return text
        try:
            constraint.check(text)
        except ConstraintViolation:
            # Greedy decoding replays the same prefix, so a cut-off output only needs more room.
            retry = Sampling(**{**params.__dict__, "max_tokens": params.max_tokens * 2})
            text = self._generate(to_messages(messages), constraint, retry)
            constraint.check(text)
        return text

    def stream(self, messages: Messages, output_type: OutputType = None, **sampling: Any) -> Iterator[str]:
        """Yield the answer's text as it is decoded; the joined pieces satisfy ``output_type``.

        The check runs when decoding ends: a stream whose whole text breaks the constraint raises
        :class:`ConstraintViolation` after its last piece.
        """
        params = Sampling.of(sampling)
        constraint = _bounded(to_constraint(output_type), params)
        pieces = []
        # Closed here, not whenever it is collected: a backend frees the request's sequence as it closes.
        with contextlib.closing(self._stream(to_messages(messages), constraint, params)) as stream:
            for piece in stream:
                pieces.append(piece)
                yield piece
        if constraint is not None:
            constraint.check("".join(pieces))

    def choose(
        self, prompts: Sequence[Messages], choices: Sequence[str] | Sequence[Sequence[str]], *, chat: bool = True
    ) -> list[Choice]:
        """Answer multiple-choice prompts, one forward pass per prompt, batched by the backend.

        Args:
            prompts: chat prompts; the answer is the first thing the assistant says.
            choices: one list of choices for every prompt, or one list per prompt.
            chat: False to score each prompt as raw text, no chat template (a base model, or
                lm-evaluation-harness's "Question: ... Answer:" format with choices " A", " B"...).

        A choice that is not a single token after the prompt (or two choices that start with the
        same token) cannot be read off one distribution: that prompt falls back to the exact
        log-likelihood of each whole choice.
        """
        per_prompt = _per_prompt_choices(choices, len(prompts))
        if chat:
            texts = [self.render(to_messages(p)) for p in prompts]
        elif all(isinstance(p, str) for p in prompts):
            texts = [_encodable(p, f"prompt {i}") for i, p in enumerate(prompts)]  # type: ignore[arg-type]
        else:
            raise InputError("chat=False scores raw text: pass each prompt as a string, not a list of messages")
        token_ids = [[self._single_token(t, c) for c in opts] for t, opts in zip(texts, per_prompt, strict=True)]
        direct = [i for i, ids in enumerate(token_ids) if None not in ids and len(set(ids)) == len(ids)]
        starts = [self.prompt_tokens(texts[i]) for i in direct]
        rows = dict(zip(direct, self._next_token_logprobs(starts), strict=True)) if direct else {}
        out = []
        for i, (text, opts) in enumerate(zip(texts, per_prompt, strict=True)):
            if i in rows:
                scores = [float(rows[i][tid]) for tid in token_ids[i]]
            else:
                scores = self.loglikelihood([(text, o) for o in opts])
            probs = _softmax(scores)
            best = max(range(len(opts)), key=lambda k: scores[k])
            out.append(Choice(opts[best], dict(zip(opts, probs, strict=True)), dict(zip(opts, scores, strict=True))))
        return out

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context (raw text, no chat template)."""
        split = [
            split_continuation(self, _encodable(c, f"context {i}"), _encodable(x, f"continuation {i}"))
            for i, (c, x) in enumerate(pairs)
        ]
        return self._loglikelihood_tokens([(self.start(ctx), cont) for ctx, cont in split])

    def prompt_tokens(self, text: str) -> list[int]:
        """The tokens the model is fed for a prompt text: :meth:`tokenize`, then :meth:`start`."""
        return self.start(self.tokenize(text))

    def start(self, tokens: list[int]) -> list[int]:
        """The one rule for the tokens a prompt starts with, on every backend.

        BOS goes first when the model's tokenizer adds one (:class:`SpecialTokens` ``add_bos``), and never
        twice: a chat template that renders ``bos_token`` itself (Llama 3) already starts the text with it,
        and adding another would feed two. An empty context becomes the one token lm-evaluation-harness
        scores it after: BOS where the vocabulary has one, else EOS.
        """
        special = self.special_tokens()
        if not tokens:
            return [special.eos if special.bos is None else special.bos]
        if special.add_bos and special.bos is not None and tokens[0] != special.bos:
            return [special.bos, *tokens]
        return list(tokens)

    def self_check(self) -> None:
        """Prove that constraints are active on this backend, or raise :class:`ModelError`.

        A shape no model writes unprompted (three digits, a dash, two letters) is asked for in reply
        to a greeting. Unconstrained text fails the check, so a silently disabled logits processor
        (outlines on llama.cpp without numba) is caught at start-up instead of in a student's quiz.
        """
        probe = Pattern(r"[0-9]{3}-[a-z]{2}")
        text = self._generate(to_messages("Hello! How are you today?"), probe, Sampling(max_tokens=16))
        try:
            probe.check(text)
        except ConstraintViolation as exc:
            raise ModelError(
                f"{self.backend}: constrained decoding is not active (asked for /{probe.pattern}/, got {text!r}). "
                "For llama.cpp, install numba (`pip install numba`); then reinstall the project."
            ) from exc
        yes_no = Choices(("yes", "no"))
        yes_no.check(self._generate(to_messages("Is water wet? Answer yes or no."), yes_no, Sampling(max_tokens=4)))

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to free
        """Free what the backend holds (native contexts, GPU memory)."""

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what a backend implements --------------------------------------------------------------

    @abstractmethod
    def _generate(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        """Decode one answer under ``constraint`` (None: free text)."""

    def _stream(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> Iterator[str]:
        """Yield pieces of one answer; by default the whole answer at once."""
        yield self._generate(messages, constraint, sampling)

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model reads it (special tokens parsed, no BOS added: see :meth:`start`)."""

    @abstractmethod
    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text for a chat, through the model's chat template, ready for the assistant's turn."""

    @abstractmethod
    def special_tokens(self) -> SpecialTokens:
        """BOS, EOS and whether the model's tokenizer adds BOS: what :meth:`start` needs to know."""

    @abstractmethod
    def _next_token_logprobs(self, prompts: list[list[int]]) -> list[Any]:
        """For each prompt's tokens (already started), log-probabilities of the next token (indexable by id)."""

    @abstractmethod
    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        """Sum of log P(continuation tokens | context tokens) for each pair; contexts are already started."""

    # ---- helpers --------------------------------------------------------------------------------

    def _single_token(self, prompt_text: str, choice: str) -> int | None:
        _ctx, cont = split_continuation(self, prompt_text, choice)
        return cont[0] if len(cont) == 1 else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} backend={self.backend}>"


def _per_prompt_choices(choices: Sequence[str] | Sequence[Sequence[str]], n: int) -> list[list[str]]:
    if not choices:
        raise InputError("no choices given: pass at least two choices")
    if all(isinstance(c, str) for c in choices):
        per_prompt = [list(choices)] * n  # type: ignore[arg-type]
    else:
        per_prompt = [list(c) for c in choices]
        if len(per_prompt) != n:
            raise InputError(f"{n} prompts but {len(per_prompt)} lists of choices")
    for i, opts in enumerate(per_prompt):
        if len(opts) < 2 or len(set(opts)) != len(opts) or not all(isinstance(o, str) and o for o in opts):
            raise InputError(f"prompt {i}: choices must be at least two distinct non-empty strings, got {opts}")
    return per_prompt
