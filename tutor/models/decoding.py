"""Token selection on numpy logits: the decode step our llama.cpp loop runs.

:func:`pick_token` chooses the next token (argmax or a sample, after the repetition penalty and the
constraint's mask); the mask itself comes from a steer (:mod:`tutor.models.grammar`). When a steer
allows exactly one token no choice is left, and the loop feeds it without a forward pass.
"""

from __future__ import annotations

import numpy as np

from tutor.models.base import Sampling

REPETITION_WINDOW = 64  # how many recent tokens the repetition penalty looks at (llama.cpp's default)


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
    # The maximum first, then the temperature: a tiny temperature (1e-300) turns the best score into 0 and the
    # rest into -inf (greedy), where dividing first overflows to inf - inf = NaN.
    scores = (scores - scores.max()) / sampling.temperature
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
