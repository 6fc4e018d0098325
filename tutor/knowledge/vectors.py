"""Dense vectors for passages and queries: WordLlama's static embeddings, loaded offline from its own wheel.

WordLlama (l2_supercat, 256 dimensions) is a token-embedding table with mean pooling: 16 MB, loads in ~0.2 s,
embeds a query in ~0.2 ms and 500 passages in ~0.2 s on one CPU core. Without it installed the knowledge base
runs on BM25 alone (:func:`embedder` returns ``None``); :func:`embed` is for callers that need vectors
(near-duplicate questions, distractor plausibility) and says how to install them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tutor.knowledge.errors import KnowledgeError

if TYPE_CHECKING:
    import numpy as np

EMBEDDER = "wordllama-l2_supercat-256"  # stored with each knowledge base: vectors from another model are not mixed

_lock = threading.Lock()
_model: object | None = None
_missing = False


def embedder():  # -> WordLlamaInference | None
    """The loaded WordLlama model (once per process), or ``None`` when wordllama is not installed."""
    global _model, _missing
    if _model is None and not _missing:
        with _lock:
            if _model is None and not _missing:
                try:
                    import wordllama
                except ImportError:
                    _missing = True
                    return None
                # The weights ship inside the wheel; never look for them on a hub.
                _model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return _model


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length float32 vectors, one row per text (cosine similarity is their dot product)."""
    import numpy as np

    model = embedder()
    if model is None:
        raise KnowledgeError("embeddings need wordllama: pip install wordllama")
    if not texts:
        return np.zeros((0, 256), dtype=np.float32)
    return np.asarray(model.embed(list(texts), norm=True), dtype=np.float32)  # type: ignore[attr-defined]
