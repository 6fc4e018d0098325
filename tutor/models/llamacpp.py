"""GGUF models through llama-cpp-python, constrained by llguidance (or outlines_core).

We run our own decode loop over llama.cpp's context instead of ``Llama.__call__`` with an outlines
logits processor, for three measured reasons (``benchmarks/speed.py``):

* llama-cpp-python calls a Python logits processor through a ctypes callback that swallows its
  exceptions: without numba, outlines' processor fails there and generation runs UNCONSTRAINED.
  Our loop applies the grammar's mask itself; an error is an error.
* llguidance computes masks lazily (no compile step); outlines_core compiles a whole index first,
  32 s for a quiz schema here. Both are selectable (``grammar_backend=``); llguidance is the default.
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

from tutor.models.base import Model, ModelError, Sampling
from tutor.models.chat_template import render_chat
from tutor.models.constraints import Constraint
from tutor.models.decoding import CoreSteer, GuidanceSteer, log_softmax, pick_token
from tutor.models.steering import grammar_regex, guidance_grammar

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
        grammar_backend: str = "llguidance",
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
        self.add_bos = self.llama.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self.template = self.llama.metadata.get("tokenizer.chat_template")
        self._bos_text = self._piece(self.llama.token_bos())
        self._eos_text = self._piece(self.eos_id)
        self._cached: list[int] = []  # tokens whose keys and values sit in the KV cache, in order
        if grammar_backend not in ("llguidance", "outlines_core"):
            raise ModelError(
                f"llama.cpp supports grammar_backend 'llguidance' or 'outlines_core', not {grammar_backend!r}"
            )
        self.grammar_backend = grammar_backend
        self._indexes: dict[str, Any] = {}  # constraint key -> regex (llguidance) or compiled Index (outlines_core)
        self._core_vocab: Any = None
        self._llg_tokenizer: Any = None
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

    def _piece(self, token: int) -> str:
        return self.llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        bos = [self.llama.token_bos()] if self.add_bos else []
        return bos + self.tokenize(self.render(messages))

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

    def _steer(self, constraint: Constraint | None) -> CoreSteer | GuidanceSteer | None:
        if constraint is None:
            return None
        compiled = self._indexes.get(constraint.key)
        if compiled is None:
            compiled = self._indexes[constraint.key] = self._compile(constraint)
        if self.grammar_backend == "outlines_core":
            return CoreSteer(compiled, self.n_vocab, self.eos_id)
        return GuidanceSteer(self._llg_tokenizer, compiled, self.n_vocab)

    def _compile(self, constraint: Constraint) -> Any:
        if self.grammar_backend == "llguidance":
            if self._llg_tokenizer is None:
                import llguidance.llamacpp

                self._llg_tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(self._vocab)
            return guidance_grammar(constraint)  # llguidance builds its lexer lazily: nothing to compile ahead
        from outlines_core import Index

        regex = grammar_regex(constraint)

        if self._core_vocab is None:
            import outlines
            from outlines.backends.outlines_core import OutlinesCoreBackend

            self._core_vocab = OutlinesCoreBackend(outlines.from_llamacpp(self.llama)).vocabulary
        return Index(regex, self._core_vocab)

    def _generate(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        return "".join(self._stream(messages, constraint, sampling))

    def _stream(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> Iterator[str]:
        with self._lock:
            steer = self._steer(constraint)
            tokens = self._prompt_tokens(messages)
            budget = min(sampling.max_tokens, self.llama.n_ctx() - len(tokens))
            if budget <= 0:
                raise ModelError(
                    f"the prompt is {len(tokens)} tokens and fills the {self.llama.n_ctx()}-token context: shorten it"
                )
            rng = np.random.default_rng(sampling.seed)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            start = len(tokens)
            for _ in range(budget):
                mask = steer.allowed() if steer is not None else None
                if mask is not None and np.count_nonzero(mask) == 1:
                    token = int(np.flatnonzero(mask)[0])  # no choice left: skip the forward pass
                else:
                    # _forward decodes every token since the last pass (forced ones too) in one batch.
                    token = pick_token(self._forward(tokens)[0], sampling, rng, mask, tokens[start:])
                if self._is_end(token, steer):
                    break
                tokens.append(token)
                if steer is not None:
                    steer.advance(token)
                text = decoder.decode(self.llama.detokenize([token], special=False))
                if text:
                    yield text
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail

    def _is_end(self, token: int, steer: CoreSteer | GuidanceSteer | None) -> bool:
        if steer is not None:
            return token == steer.eos
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # ---- scoring ---------------------------------------------------------------------------------

    def _next_token_logprobs(self, texts: list[str]) -> list[Any]:
        with self._lock:
            bos = [self.llama.token_bos()] if self.add_bos else []
            return [log_softmax(self._forward(bos + self.tokenize(t))[0]) for t in texts]

    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        out = []
        with self._lock:
            for ctx, cont in pairs:
                prefix = ([self.llama.token_bos()] if self.add_bos else []) + ctx
                if not prefix:  # lm-evaluation-harness scores an empty context after end-of-text
                    prefix = [self.eos_id]
                rows = log_softmax(self._forward(prefix + cont[:-1], n_rows=len(cont)))
                out.append(float(rows[np.arange(len(cont)), cont].sum()))
        return out

    def close(self) -> None:
        """Free llama.cpp's model and context."""
        with self._lock:
            self.llama.close()
