"""GGUF models through llama-cpp-python, constrained by llguidance (or outlines_core).

We run our own decode loop over llama.cpp's context instead of ``Llama.__call__`` with an outlines
logits processor, for three measured reasons (``benchmarks/speed.py``):

* llama-cpp-python calls a Python logits processor through a ctypes callback that swallows its
  exceptions: without numba, outlines' processor fails there and generation runs UNCONSTRAINED.
  Our loop applies the grammar's mask itself; an error is an error.
* llguidance computes masks lazily (no compile step); outlines_core compiles a whole index first,
  32 s for a quiz schema here. Both are selectable (``grammar_backend=``, see :mod:`tutor.models.grammar`);
  llguidance is the default.
* The callback copies a strided record array of the whole vocabulary per token. Masking the
  logits row directly costs less, and when the guide allows exactly one token (JSON keys and
  punctuation) we feed it without a forward pass of its own: forced tokens are decoded in one batch.
* The KV cache is kept between calls and reused for the longest common prefix, so a quiz's shared
  system prompt, or a benchmark question scored against four answers, is computed once.
"""

from __future__ import annotations

import codecs
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tutor.models import grammar
from tutor.models.base import Model, ModelError, Sampling, SpecialTokens
from tutor.models.chat_template import render_chat
from tutor.models.constraints import Constraint
from tutor.models.decoding import log_softmax, pick_token

INSTALL_HINT = "install it with `pip install llama-cpp-python` (or reinstall this project: see README.md)"


class LlamaCppModel(Model):
    """A GGUF file in llama.cpp, behind the one Model API."""

    backend = "llamacpp"

    def __init__(
        self,
        path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        grammar_backend: str = grammar.DEFAULT_ENGINE,
    ) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}") from exc
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"no GGUF file at {self.path}: pass --model PATH to an existing .gguf file")
        try:
            self.llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count() or 1,
                # Prompt evaluation has its own pool, all cores by default: --threads must bound it too (on a
                # busy machine llama.cpp's threads spin at a barrier every batch, and more threads are slower).
                n_threads_batch=n_threads or os.cpu_count() or 1,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp could not load {self.path} ({exc}): is it a complete, valid GGUF file?"
            ) from exc
        self.name = self.llama.metadata.get("general.name") or self.path.stem
        self._llama_cpp = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        self.n_vocab = self.llama.n_vocab()
        self.eos_id = self.llama.token_eos()
        bos = self.llama.token_bos()
        add_bos = self.llama.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self._special = SpecialTokens(bos=bos if bos >= 0 else None, eos=self.eos_id, add_bos=add_bos)
        self.template = self.llama.metadata.get("tokenizer.chat_template")
        self._bos_text = self._piece(bos) if bos >= 0 else ""
        self._eos_text = self._piece(self.eos_id)
        self._cached: list[int] = []  # tokens whose keys and values sit in the KV cache, in order
        self.grammar = grammar.for_llamacpp(self.llama, self._vocab, grammar_backend)
        # A plain Lock, not an RLock: a stream holds it across yields, and a consumer (Gradio) may resume
        # the generator, and so release the lock, on another thread than the one that acquired it.
        self._lock = threading.Lock()

    # ---- text ------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens parsed, no BOS)."""
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat through the GGUF's own template."""
        return render_chat(self.template, messages, bos_token=self._bos_text, eos_token=self._eos_text)

    def special_tokens(self) -> SpecialTokens:
        """BOS and EOS from the GGUF; BOS is added when its ``tokenizer.ggml.add_bos_token`` says so."""
        return self._special

    def _piece(self, token: int) -> str:
        return self.llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    # ---- the KV cache and forward passes ---------------------------------------------------------

    def _forward(self, tokens: list[int], n_rows: int = 1) -> np.ndarray:
        """Logits at the last ``n_rows`` positions of ``tokens``, reusing the cached prefix."""
        n_ctx = self.llama.n_ctx()
        if len(tokens) > n_ctx:
            raise ModelError(f"{len(tokens)} tokens do not fit the {n_ctx}-token context: shorten the input")
        first_row = len(tokens) - n_rows
        keep = 0
        for a, b in zip(self._cached, tokens[:first_row], strict=False):
            if a != b:
                break
            keep += 1
        self.llama._ctx.kv_cache_seq_rm(-1, keep, -1)
        self._cached = self._cached[:keep]
        rows = []
        n_batch = self.llama.n_batch
        for start in range(keep, len(tokens), n_batch):
            chunk = tokens[start : start + n_batch]
            self._decode(chunk, start, first_row)
            self._cached.extend(chunk)
            for i in range(max(first_row - start, 0), len(chunk)):
                ptr = self._llama_cpp.llama_get_logits_ith(self.llama._ctx.ctx, i)
                rows.append(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())
        return np.stack(rows)

    def _decode(self, chunk: list[int], n_past: int, first_row: int) -> None:
        batch = self.llama._batch.batch
        batch.n_tokens = len(chunk)
        for i, token in enumerate(chunk):
            batch.token[i] = token
            batch.pos[i] = n_past + i
            batch.seq_id[i][0] = 0
            batch.n_seq_id[i] = 1
            batch.logits[i] = n_past + i >= first_row
        try:
            self.llama._ctx.decode(self.llama._batch)
        except RuntimeError as exc:
            self._cached = []
            self.llama._ctx.kv_cache_seq_rm(-1, 0, -1)
            raise ModelError(f"llama.cpp failed to decode: {exc}") from exc

    # ---- generation ------------------------------------------------------------------------------

    def _generate(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        return "".join(self._stream(messages, constraint, sampling))

    def _stream(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> Iterator[str]:
        with self._lock:
            steer = self.grammar.steer(constraint)
            tokens = self.prompt_tokens(self.render(messages))
            budget = min(sampling.max_tokens, self.llama.n_ctx() - len(tokens))
            if budget <= 0:
                raise ModelError(
                    f"the prompt is {len(tokens)} tokens and fills the {self.llama.n_ctx()}-token context: shorten it"
                )
            rng = np.random.default_rng(sampling.seed)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            start = len(tokens)
            for _ in range(budget):
                mask = steer.allowed()
                if mask is not None and np.count_nonzero(mask) == 1:
                    token = int(np.flatnonzero(mask)[0])  # no choice left: skip the forward pass
                else:
                    # _forward decodes every token since the last pass (forced ones too) in one batch.
                    token = pick_token(self._forward(tokens)[0], sampling, rng, mask, tokens[start:])
                if self._is_end(token, steer):
                    break
                tokens.append(token)
                steer.advance(token)
                text = decoder.decode(self.llama.detokenize([token], special=False))
                if text:
                    yield text
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail

    def _is_end(self, token: int, steer: grammar.Steer) -> bool:
        if steer.eos is not None:  # a grammar ends on its own end token; free text on any end-of-generation one
            return token == steer.eos
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # ---- scoring ---------------------------------------------------------------------------------

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list[Any]:
        with self._lock:
            return [log_softmax(self._forward(tokens)[0]) for tokens in prompts]

    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        out = []
        with self._lock:
            for ctx, cont in pairs:
                rows = log_softmax(self._forward(ctx + cont[:-1], n_rows=len(cont)))
                out.append(float(rows[np.arange(len(cont)), cont].sum()))
        return out

    def close(self) -> None:
        """Free llama.cpp's model and context."""
        with self._lock:
            self.llama.close()
