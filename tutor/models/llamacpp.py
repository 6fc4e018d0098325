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
* Concurrent calls are decoded together: several sequences in one ``llama_batch``, each with its own KV-cache
  sequence id, grammar, sampling and stop condition (:mod:`tutor.models.batching`). A step reads the weights once
  for all of them, which is where the throughput of a class at once comes from; by default (``deterministic``)
  a sequence's greedy text is the same whatever runs beside it and whatever the cache held.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tutor.models import grammar
from tutor.models.base import Model, ModelError, Sampling, SpecialTokens
from tutor.models.batching import SHARE_MIN, GenJob, Scheduler, ScoreJob
from tutor.models.chat_template import render_chat
from tutor.models.constraints import Constraint
from tutor.models.decoding import log_softmax

INSTALL_HINT = "install it with `pip install llama-cpp-python` (or reinstall this project: see README.md)"
MAX_SEQS = 4  # sequences decoded at once: 4 gave 1.77x one's rate on 2 cores, 8 hardly more (issue 14's bare loop)
N_BATCH = 512  # most tokens per decode step (a long prompt is fed in chunks of this, beside the running sequences)
STREAM_COPY_MIN = 64  # a copy between KV streams moves a whole stream: worth it for a prefix this long
DETERMINISTIC_UBATCH = 32  # < 64 tokens per micro-batch keeps every row on one kernel path (see LlamaCppModel)
WRAPPER_CTX = 64  # the Llama object's own context, which we never decode in
DEFAULT_CTX = 4096  # tokens a request may hold unless n_ctx says otherwise (or the model was trained on fewer)
# The least n_ctx: room for a chat template, a prompt and an answer. Below it llama.cpp can abort the whole process:
# one shared cache of n_ctx <= max_seqs cells fails GGML_ASSERT(n_outputs_max <= cparams.n_outputs_max) (found by
# the options fuzzer: n_ctx=1, deterministic=False); with max_seqs <= MAX_SEQS_LIMIT this bound keeps n_ctx above it.
MIN_CTX = 128
MAX_THREADS = 512  # ggml's own limit (GGML_MAX_N_THREADS)
INTERACTIVE_SEQS = 1  # a sequence beyond max_seqs kept for interactive calls (batching.interactive): a chat waits for
# no quiz; prompt evaluation already fills the cores, so background work loses little by not having it
MAX_SEQS_LIMIT = (
    64  # < MIN_CTX; far past any gain (8 measured hardly faster than 4) and n_ctx KV cells each when deterministic
)


def _in_range(name: str, value: int | None, low: int, high: int | None, why: str, optional: bool = False) -> None:
    """Refuse a whole-number setting outside ``[low, high]`` (``high`` None: no upper bound) with what to pass."""
    if value is None and optional:
        return
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ModelError(f"{name} must be a whole number {bound} ({why}), not {value!r}")


def kv_bytes(llama: Any, n_ctx: int, max_seqs: int, deterministic: bool) -> int:
    """Bytes of KV cache a context takes: a stream of ``n_ctx`` cells per sequence when deterministic, else one.

    A cell holds a key and a value row of every layer in f16 (llama.cpp's default cache type).
    """
    import llama_cpp

    model = llama.model
    n_head = max(llama_cpp.llama_model_n_head(model), 1)
    kv_width = llama_cpp.llama_model_n_embd(model) // n_head * llama_cpp.llama_model_n_head_kv(model)
    cells = n_ctx * (max_seqs + INTERACTIVE_SEQS if deterministic else 1)
    return cells * llama_cpp.llama_model_n_layer(model) * 2 * kv_width * 2


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (MemAvailable), or None where /proc/meminfo is absent."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _check_kv_fits(llama: Any, n_ctx: int, max_seqs: int, deterministic: bool) -> None:
    """Refuse a KV cache larger than the memory available: llama.cpp would allocate it lazily and die mid-answer."""
    need, free = kv_bytes(llama, n_ctx, max_seqs, deterministic), available_memory()
    if free is not None and need > free:
        layout = f"{max_seqs + INTERACTIVE_SEQS} streams of {n_ctx} cells" if deterministic else f"{n_ctx} cells"
        raise ModelError(
            f"n_ctx={n_ctx} with max_seqs={max_seqs} needs {need / 2**30:.1f} GiB of KV cache ({layout}) but "
            f"{free / 2**30:.1f} GiB of memory is available: pass a smaller n_ctx or max_seqs"
            + (", or deterministic=False (one cache the sequences share)" if deterministic else "")
        )


class BatchContext:
    """A llama.cpp context for several sequences (a KV stream each, or one unified cache), for the scheduler."""

    def __init__(self, llama: Any, *, n_ctx: int, threads: int, max_seqs: int, deterministic: bool) -> None:
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_default_params()
        # Deterministic: a KV stream of n_ctx cells per sequence, so a sequence's cells always lie in the order of its
        # positions (flash attention adds them up in cell order, and in one shared cache a freed hole can take a later
        # token); micro-batches under 64 tokens. Otherwise one unified cache of n_ctx cells shares a prefix's cells.
        self.unified = not deterministic
        self.threads = threads
        seqs = max_seqs + INTERACTIVE_SEQS
        params.n_ctx = n_ctx if self.unified else n_ctx * seqs
        params.n_batch, params.n_ubatch = N_BATCH, N_BATCH if self.unified else DETERMINISTIC_UBATCH
        params.n_seq_max = seqs
        params.kv_unified = self.unified
        params.n_threads = params.n_threads_batch = threads  # --threads bounds prompt evaluation too
        # Flash attention: without it a prompt's cells differ when computed whole or one token at a time (by up to
        # 0.5 in a logit here), so a reused cache changes what follows; with it they agree to the bit.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.no_perf = True
        self._ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        self._llama_cpp = llama_cpp
        self._batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
        self._memory = self._ctx.memory
        self._n_vocab = llama.n_vocab()

    def decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """Evaluate ``(token, position, sequence, wants logits)`` items in one ``llama_decode``."""
        batch = self._batch
        batch.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.logits[i] = token, pos, logits
            batch.seq_id[i][0], batch.n_seq_id[i] = seq, 1
        code = self._llama_cpp.llama_decode(self._ctx.ctx, batch)
        if code != 0:
            raise ModelError(f"llama.cpp failed to decode a batch of {len(items)} tokens (code {code}): retry")

    def logits(self, i: int) -> np.ndarray:
        """A copy of the logits of item ``i`` of the last batch."""
        ptr = self._llama_cpp.llama_get_logits_ith(self._ctx.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()

    def seq_rm(self, seq: int, p0: int) -> None:
        """Drop sequence ``seq``'s cells from position ``p0`` on."""
        self._llama_cpp.llama_memory_seq_rm(self._memory, seq, p0, -1)

    def copy_prefix(self, src: int, dst: int, p0: int, p1: int) -> None:
        """Give ``dst`` the cells of ``src`` at positions ``[p0, p1)``."""
        if self.unified:  # the cells become shared by both sequences: nothing is copied
            self._llama_cpp.llama_memory_seq_cp(self._memory, src, dst, p0, p1)
        else:  # across streams llama.cpp copies whole buffers only: take all of src, then drop what is not shared
            self._llama_cpp.llama_memory_seq_cp(self._memory, src, dst, -1, -1)
            self._llama_cpp.llama_memory_seq_rm(self._memory, dst, p1, -1)

    def close(self) -> None:
        """Free the batch and the context."""
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()


class LlamaCppModel(Model):
    """A GGUF file in llama.cpp, behind the one Model API; concurrent calls are decoded in one batch.

    Args:
        path: the GGUF file.
        n_ctx: the most tokens one request may hold (its prompt plus its answer): at most the context the model was
            trained on (default: :data:`DEFAULT_CTX`, or that context when it is shorter).
        n_threads: threads of llama.cpp's kernels (default: every core).
        seed: llama.cpp's seed, 0 to 2**32 - 1 (our sampling draws from a generator per request, seeded by ``seed=``).
        grammar_backend: the grammar engine (:mod:`tutor.models.grammar`).
        max_seqs: most sequences decoded at once (1 to :data:`MAX_SEQS_LIMIT`); more concurrent requests wait, first
            come first served. :data:`INTERACTIVE_SEQS` more are kept for interactive calls
            (:func:`tutor.models.batching.interactive`: a student's chat while quizzes are written).
        deterministic: greedy output that does not depend on what else runs or on what the KV cache held. With flash
            attention, llama.cpp's CPU kernels give a row the same bits whatever else is in its batch provided that
            (1) each micro-batch has fewer than 64 tokens (from 64 on another kernel path rounds differently) and
            (2) a sequence's cells lie in the order of its positions (attention adds them up in cell order). So each
            sequence gets a KV stream of ``n_ctx`` cells of its own (``n_ctx * (max_seqs + 1)`` cells in all: 23 KB
            a cell on the embedded model; with four streams 528 MB resident loaded against 263 MB unified) and
            micro-batches are :data:`DETERMINISTIC_UBATCH` tokens. False: one unified cache of ``n_ctx`` cells that
            the sequences share (a common prefix's cells held once) and 512-token micro-batches: less memory and
            faster long prompts, but greedy text can change with what ran before (README.md gives the measured rate).

    Raises:
        ModelError: for a file llama.cpp cannot load, a setting out of range, or a KV cache larger than the memory
            available (checked before the cache is allocated: an absurd ``n_ctx`` would otherwise take most of a
            minute to fail, and a large one would fail mid-answer, since llama.cpp touches the cache as it fills).
    """

    backend = "llamacpp"

    def __init__(
        self,
        path: str | Path,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        seed: int = 0,
        grammar_backend: str = grammar.DEFAULT_ENGINE,
        max_seqs: int = MAX_SEQS,
        deterministic: bool = True,
    ) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(f"the llama.cpp backend needs llama-cpp-python: {INSTALL_HINT}") from exc
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"no GGUF file at {self.path}: pass --model PATH to an existing .gguf file")
        _in_range("n_threads", n_threads, 1, MAX_THREADS, "one per core is the most that helps", optional=True)
        _in_range("seed", seed, 0, 2**32 - 1, "llama.cpp's seed is 32 bits")
        _in_range("max_seqs", max_seqs, 1, MAX_SEQS_LIMIT, f"{MAX_SEQS} measured best")
        _in_range("n_ctx", n_ctx, MIN_CTX, None, "room for a prompt and its answer", optional=True)
        threads = n_threads or os.cpu_count() or 1
        try:
            # The Llama object gives us the weights, the vocabulary and the metadata; its own context stays tiny
            # (llama-cpp-python cannot open one for several sequences), and we decode in a context of our own.
            self.llama = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=WRAPPER_CTX, n_batch=WRAPPER_CTX, n_threads=threads,
                n_threads_batch=threads, seed=seed, verbose=False,
            )  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp could not load {self.path} ({exc}): is it a complete, valid GGUF file?"
            ) from exc
        trained = self.llama._model.n_ctx_train()  # the context the model was trained on (0: not recorded)
        if n_ctx is None:
            n_ctx = min(DEFAULT_CTX, trained) if trained > 0 else DEFAULT_CTX
        elif trained > 0 and n_ctx > trained:
            self.llama.close()
            raise ModelError(
                f"n_ctx={n_ctx} is more than the {trained} tokens {self.path.name} was trained on: "
                f"pass at most {trained}"
            )
        try:
            _check_kv_fits(self.llama, n_ctx, max_seqs, deterministic)
            self._context = BatchContext(
                self.llama, n_ctx=n_ctx, threads=threads, max_seqs=max_seqs, deterministic=deterministic
            )
        except (ValueError, RuntimeError) as exc:
            self.llama.close()
            raise ModelError(
                f"llama.cpp could not make a {n_ctx}-token context for {self.path} ({exc}): "
                "pass a smaller n_ctx or max_seqs"
            ) from exc
        self.name = self.llama.metadata.get("general.name") or self.path.stem
        self._llama_cpp = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        self.n_vocab = self.llama.n_vocab()
        self.n_ctx = n_ctx
        self.eos_id = self.llama.token_eos()
        bos = self.llama.token_bos()
        add_bos = self.llama.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self._special = SpecialTokens(bos=bos if bos >= 0 else None, eos=self.eos_id, add_bos=add_bos)
        self.template = self.llama.metadata.get("tokenizer.chat_template")
        self._bos_text = self._piece(bos) if bos >= 0 else ""
        self._eos_text = self._piece(self.eos_id)
        self.grammar = grammar.for_llamacpp(self.llama, self._vocab, grammar_backend)
        self.concurrency = max_seqs
        # No lock: the scheduler's one worker thread owns the context, and merges every caller's requests.
        self.scheduler = Scheduler(
            self._context, n_ctx=n_ctx, n_batch=N_BATCH, max_seqs=max_seqs, interactive_seqs=INTERACTIVE_SEQS,
            shared_kv=not deterministic,
            min_share=SHARE_MIN if not deterministic else STREAM_COPY_MIN,
        )  # fmt: skip

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

    # ---- generation and scoring: jobs for the batch scheduler ------------------------------------

    def _stream(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> Iterator[str]:
        steer = self.grammar.steer(constraint)
        tokens = self.prompt_tokens(self.render(messages))
        budget = min(sampling.max_tokens, self.n_ctx - len(tokens))
        if budget <= 0:
            raise ModelError(f"the prompt is {len(tokens)} tokens and fills the {self.n_ctx}-token context: shorten it")
        job = GenJob(tokens, steer, sampling, budget, piece=self._bytes, is_end=self._is_end)
        yield from self.scheduler.stream(job)

    def _generate(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        return "".join(self._stream(messages, constraint, sampling))

    def _bytes(self, token: int) -> bytes:
        return self.llama.detokenize([token], special=False)

    def _is_end(self, token: int, steer: grammar.Steer) -> bool:
        if steer.eos is not None:  # a grammar ends on its own end token; free text on any end-of-generation one
            return token == steer.eos
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list[Any]:
        rows = self.scheduler.score([ScoreJob(tokens) for tokens in prompts])
        return [log_softmax(r[0]) for r in rows]

    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        jobs = [ScoreJob(ctx + cont[:-1], len(cont)) for ctx, cont in pairs]
        rows = self.scheduler.score(jobs)
        return [
            float(log_softmax(r)[np.arange(len(cont)), cont].sum()) for r, (_, cont) in zip(rows, pairs, strict=True)
        ]

    @property
    def _cached(self) -> list[int]:
        """The tokens in the KV cache of the sequence used last (tests read what a prompt was fed)."""
        return list(max(self.scheduler.slots, key=lambda s: s.used).tokens)

    def close(self) -> None:
        """Stop the scheduler (requests still running fail), then free llama.cpp's context and model."""
        self.scheduler.close()
        self._context.close()
        self.llama.close()
