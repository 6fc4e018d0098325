"""Token selection under a constraint, on numpy logits: the decode step our llama.cpp loop runs.

A steer holds the constraint state of one generation and answers two questions per step: which tokens
may come next (a boolean mask over the vocabulary), and "this token was chosen" (advance). Two grammar
engines, both from outlines' stack, sit behind the same two calls:

* :class:`GuidanceSteer` (llguidance, the default): lazy. No compile step; a mask costs ~0.1 ms.
* :class:`CoreSteer` (outlines_core): compiles a full token index up front, which for a quiz schema
  with bounded strings took 32 s on this machine (``benchmarks/speed.py`` measures both).

When a steer allows exactly one token no choice is left, and the loop feeds it without a forward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tutor.models.base import Sampling

REPETITION_WINDOW = 64  # how many recent tokens the repetition penalty looks at (llama.cpp's default)


def _unpack(bitmask: np.ndarray, n_vocab: int) -> np.ndarray:
    bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little")
    return bits[:n_vocab].astype(bool)


class CoreSteer:
    """An outlines_core Guide over a compiled Index."""

    def __init__(self, index: Any, n_vocab: int, eos: int) -> None:
        from outlines_core import Guide
        from outlines_core.kernels.numpy import allocate_token_bitmask

        self.eos = eos  # the token the index allows once the text is complete
        self.guide = Guide(index)
        self.n_vocab = n_vocab
        self._bitmask = allocate_token_bitmask(n_vocab)

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens allowed next."""
        from outlines_core.kernels.numpy import fill_next_token_bitmask

        fill_next_token_bitmask(self.guide, self._bitmask)
        return _unpack(self._bitmask, self.n_vocab)

    def advance(self, token: int) -> None:
        """Move past ``token``."""
        self.guide.advance(token_id=token, return_tokens=False)


class GuidanceSteer:
    """An llguidance matcher over a grammar: ``(kind, text)`` with kind "regex" or "json_schema"."""

    def __init__(self, tokenizer: Any, grammar: tuple[str, str], n_vocab: int) -> None:
        import llguidance
        import llguidance.numpy

        self.matcher = llguidance.LLMatcher(tokenizer, llguidance.grammar_from(*grammar))
        if self.matcher.is_error():
            raise ValueError(f"llguidance rejected the grammar: {self.matcher.get_error()}")
        self.n_vocab = n_vocab
        self.eos = tokenizer.eos_token  # the token the matcher allows once the text is complete
        self._bitmask = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens allowed next."""
        import llguidance.numpy

        llguidance.numpy.fill_next_token_bitmask(self.matcher, self._bitmask, 0)
        return _unpack(self._bitmask[0], self.n_vocab)

    def advance(self, token: int) -> None:
        """Move past ``token``."""
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"llguidance refused token {token}: {self.matcher.get_error()}")


def pick_token(
    logits: np.ndarray,
    sampling: Sampling,
    rng: np.random.Generator,
    mask: np.ndarray | None,
    generated: list[int] | None = None,
) -> int:
    """Choose the next token from ``logits`` (restricted to ``mask``): argmax, or a sample.

    ``generated`` (the answer's tokens so far) feeds the repetition penalty, applied as in
    transformers: positive logits divided by it, negative ones multiplied.
    """
    penalise = sampling.repetition_penalty != 1.0 and bool(generated)
    if sampling.temperature == 0 and not penalise:  # the hot path: greedy, no copies beyond the mask
        return int(np.argmax(logits if mask is None else np.where(mask, logits, -np.inf)))
    scores = logits.astype(np.float64, copy=True)
    if penalise:
        seen = np.unique(np.asarray(generated[-REPETITION_WINDOW:]))  # type: ignore[index]
        penalised, penalty = scores[seen], sampling.repetition_penalty
        scores[seen] = np.where(penalised > 0, penalised / penalty, penalised * penalty)
    if mask is not None:
        scores[~mask] = -np.inf
    if sampling.temperature == 0:
        return int(np.argmax(scores))
    scores = scores / sampling.temperature
    scores -= scores.max()
    probs = np.exp(scores)
    probs /= probs.sum()
    if sampling.top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < sampling.top_p
        trimmed = np.zeros_like(probs)
        trimmed[order[keep]] = probs[order[keep]]
        probs = trimmed / trimmed.sum()
    return int(rng.choice(len(probs), p=probs))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities from logits, in float64 for stable sums."""
    scores = logits.astype(np.float64)
    top = scores.max(axis=-1, keepdims=True)
    return scores - top - np.log(np.exp(scores - top).sum(axis=-1, keepdims=True))
