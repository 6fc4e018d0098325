"""Sentence embeddings for checks that compare meaning, not characters (near-duplicate stems, plausible distractors).

wordllama is a static embedding model (token lookup + average pooling) whose 16 MB weights ship inside its wheel:
it runs offline, on the CPU, in microseconds per text, with no torch. It is imported on first use, not with
``quizgen``, and loaded once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@cache
def _model():  # -> wordllama.WordLlamaInference, known only once imported
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError as exc:  # a missing optional dependency, said as what to do
        raise ImportError("quizgen's embedding checks need wordllama: `pip install wordllama`") from exc
    # The weights ship in the wheel: never reach for the hub (this machine, and many users', has no network).
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def embed(texts: Sequence[str]) -> np.ndarray:
    """One unit-length row per text (float32); a text with no known token gets a zero row, similar to nothing."""
    import numpy as np

    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts; for one text pass [text]")
    if not texts:
        return np.zeros((0, _model().embed(["x"]).shape[1]), dtype=np.float32)
    vectors = np.asarray(_model().embed(list(texts), norm=False), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # Dividing by zero would give NaN rows, and NaN compares as "not similar" only by accident.
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def similarity(a: str, b: str) -> float:
    """Cosine similarity of two texts, in [-1, 1] (0 when either has no known token)."""
    va, vb = embed([a, b])
    return float(va @ vb)
