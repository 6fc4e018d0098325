"""Token selection under a constraint, on numpy logits: the decode step our llama.cpp loop runs.

A :class:`Steer` wraps one outlines_core ``Guide`` (the compiled index of a regex, a JSON schema or a
set of choices) and turns the next-token logits into the next token: masked to the tokens the guide
allows, then greedy or sampled. When the guide allows exactly one token, no choice is left to
make, and the loop may feed that token without asking the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tutor.models.base import Sampling

REPETITION_WINDOW = 64  # how many recent tokens the repetition penalty looks at (llama.cpp's default)


@dataclass
class Steer:
    """The constraint state of one generation: an outlines_core Guide and its bitmask buffer."""

    guide: Any
    n_vocab: int
    eos_id: int

    def __post_init__(self) -> None:
        from outlines_core.kernels.numpy import allocate_token_bitmask

        self._bitmask = allocate_token_bitmask(self.n_vocab)

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens the guide allows next."""
        from outlines_core.kernels.numpy import fill_next_token_bitmask

        fill_next_token_bitmask(self.guide, self._bitmask)
        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
        return bits[: self.n_vocab].astype(bool)

    def advance(self, token: int) -> None:
        """Move the guide past ``token``."""
        self.guide.advance(token_id=token, return_tokens=False)


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
    scores = logits.astype(np.float64, copy=True)
    if sampling.repetition_penalty != 1.0 and generated:
        seen = np.unique(np.asarray(generated[-REPETITION_WINDOW:]))
        penalised = scores[seen]
        scores[seen] = np.where(penalised > 0, penalised / sampling.repetition_penalty, penalised * sampling.repetition_penalty)
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
