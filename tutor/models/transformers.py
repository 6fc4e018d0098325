"""Hugging Face checkpoints (optionally with a PEFT adapter) through transformers.

Generation is ``model.generate`` with a logits processor for the constraint: :class:`SteerProcessor`
masks with a steer from the model's :class:`~tutor.models.grammar.Grammar`, the same engines and the
same cache as the llama.cpp backend (llguidance by default; ``outlines_core`` or ``xgrammar`` by
``grammar_backend=``; outlines_core ignores minimum/maximum in schemas). Sampling draws from a
generator of its own per request (:class:`SampleProcessor`), so a seed never touches torch's global
random state. Scoring runs batched forward passes that compute a shared context once and the
vocabulary head only where needed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tutor.models import grammar
from tutor.models.base import Model, ModelError, Sampling, SpecialTokens
from tutor.models.constraints import Constraint

INSTALL_HINT = "install torch and transformers (see README.md; `pip install torch==2.13.0 transformers`)"
MAX_THREADS = 512  # far past any machine this runs on; torch would accept more and start them all
GENERATE_BATCH = 4  # greedy generate calls decoded together: 2.3-2.5x one's rate at 4 on 2 cores (scripts/hf_batch.py)
# How long a call that finds the model idle waits for company before decoding: calls made "at once" by threads
# arrive milliseconds apart, and without a wait the first of two ran alone (1.0x at two threads). Only a call of at
# least GATHER_MIN_TOKENS waits: those take a second or more on a CPU, so 20 ms is at most a few percent of it.
GATHER_S = 0.02
GATHER_MIN_TOKENS = 16


class TransformersModel(Model):
    """A transformers causal LM and its tokenizer, behind the one Model API."""

    backend = "transformers"

    def __init__(
        self, model: Any, tokenizer: Any, *, name: str | None = None, grammar_backend: str = grammar.DEFAULT_ENGINE
    ) -> None:
        self.hf = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.name = name or getattr(model.config, "_name_or_path", "transformers")
        self._special = special_tokens_of(tokenizer)
        self.grammar = grammar.for_transformers(model, tokenizer, grammar_backend)
        self.batch_size = 8
        # A plain Lock, not an RLock: a stream holds it across yields, and a consumer (Gradio) may resume
        # the generator, and so release the lock, on another thread than the one that acquired it.
        self._lock = threading.Lock()
        self._waiting: list[_Request] = []  # greedy generate calls not yet taken into a batch
        self._waiting_lock = threading.Lock()
        self._arrived = threading.Condition(self._waiting_lock)  # notified when a call joins _waiting
        self.concurrency = GENERATE_BATCH

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        adapter: str | Path | None = None,
        grammar_backend: str = grammar.DEFAULT_ENGINE,
        n_threads: int | None = None,
    ) -> TransformersModel:
        """Load a checkpoint directory (or hub id) and, optionally, a PEFT adapter directory on top.

        ``n_threads`` sets torch's CPU threads, which torch keeps per process (``ta --threads``).

        Raises:
            ModelError: for a missing package, a thread count out of range, or a checkpoint or adapter that
                transformers or peft cannot load (a damaged file, an unknown architecture, an adapter of another base).
        """
        if n_threads is not None and (type(n_threads) is not int or not 1 <= n_threads <= MAX_THREADS):
            raise ModelError(f"n_threads must be a whole number from 1 to {MAX_THREADS}, not {n_threads!r}")
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ModelError(f"the transformers backend needs torch and transformers: {INSTALL_HINT}") from exc
        from safetensors import SafetensorError

        # What transformers and peft raise for a checkpoint they cannot read: a missing or unreadable file (OSError),
        # a config that is damaged or of an unknown architecture (ValueError, KeyError), damaged weights.
        load_errors = (OSError, ValueError, KeyError, SafetensorError)
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
        except load_errors as exc:
            raise ModelError(f"transformers could not load {path} ({exc}): is it a complete checkpoint?") from exc
        name = Path(str(path)).name
        if adapter is not None:
            try:
                from peft import PeftModel
            except ImportError as exc:
                raise ModelError("loading an adapter needs peft: `pip install peft`") from exc
            try:
                model = PeftModel.from_pretrained(model, str(adapter))
            except (*load_errors, RuntimeError) as exc:  # RuntimeError: weights shaped for another base model
                raise ModelError(
                    f"peft could not apply the adapter {adapter} to {path} ({exc}): is the adapter complete, "
                    "and was it trained on this base model?"
                ) from exc
            name = f"{name}+{Path(adapter).name}"
        return cls(model, tokenizer, name=name, grammar_backend=grammar_backend)

    # ---- text ------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens parsed, none added)."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat through the tokenizer's chat template."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def special_tokens(self) -> SpecialTokens:
        """BOS and EOS from the tokenizer; BOS is added where the tokenizer itself adds it."""
        return self._special

    # ---- generation ------------------------------------------------------------------------------

    def _generate_kwargs(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> dict:
        import torch
        from transformers import LogitsProcessorList

        ids = torch.tensor([self.prompt_tokens(self.render(messages))])
        # transformers' own warpers would sample from torch's global generator; the processors below mask
        # and sample with one of this request's own, and greedy search then takes the one token left.
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "max_new_tokens": sampling.max_tokens,
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": sampling.repetition_penalty,
        }
        processors = []
        if constraint is not None:
            steer = self.grammar.steer(constraint)
            processors.append(SteerProcessor([steer], [self._row_end(steer)], ids.shape[1]))
            if steer.eos is not None:
                kwargs["eos_token_id"] = steer.eos  # the one the grammar ends on
        if sampling.temperature > 0:
            processors.append(SampleProcessor(sampling))
        if processors:
            kwargs["logits_processor"] = LogitsProcessorList(processors)
        return kwargs

    def _generate(self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling) -> str:
        """One answer; greedy calls made at the same time are decoded together in one padded batch.

        Each caller queues its request, then takes the lock; the holder decodes every compatible request waiting
        (greedy, no repetition penalty, up to :data:`GENERATE_BATCH`; a holder that found the model idle first waits
        up to :data:`GATHER_S` for calls made at the same time, unless its answer is short) in one ``generate`` and
        hands each
        its text, so a caller may find its answer ready when its turn comes. Rows are left-padded, each masked by
        its own steer, cut at its own end token and token budget. Measured (``scripts/hf_batch.py``): 2.3-2.5x
        the tokens per second at four rows on 2 CPU cores, and every row's greedy text the same as alone.
        """
        import torch

        if sampling.temperature > 0 or sampling.repetition_penalty != 1.0:  # alone: see _Request.compatible
            with self._lock, torch.inference_mode():
                kwargs = self._generate_kwargs(messages, constraint, sampling)
                out = self.hf.generate(**kwargs)
                return self.tokenizer.decode(out[0, kwargs["input_ids"].shape[1] :], skip_special_tokens=True)
        request = _Request(self.prompt_tokens(self.render(messages)), constraint, sampling)
        with self._arrived:
            self._waiting.append(request)
            self._arrived.notify_all()
        idle = self._lock.acquire(blocking=False)  # idle: nobody decodes, so calls made with this one may still come
        if not idle:
            self._lock.acquire()
        try:
            if not request.done.is_set():
                with self._arrived:
                    if idle and request.sampling.max_tokens >= GATHER_MIN_TOKENS:
                        self._arrived.wait_for(
                            lambda: sum(r.compatible(request) for r in self._waiting) >= GENERATE_BATCH, GATHER_S
                        )
                    batch = [r for r in self._waiting if r.compatible(request)][:GENERATE_BATCH]
                    if request not in batch:
                        batch = [request, *batch[: GENERATE_BATCH - 1]]
                    for r in batch:
                        self._waiting.remove(r)
                self._generate_batch(batch)
        finally:
            self._lock.release()
        if request.error is not None:
            raise request.error
        return request.text

    def _generate_batch(self, batch: list[_Request]) -> None:
        """Decode ``batch`` in one left-padded ``generate``; every request gets its text or the error."""
        import torch
        from transformers import LogitsProcessorList

        try:
            width = max(len(r.prompt) for r in batch)
            pad = self.tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(r.prompt)) + r.prompt for r in batch])
            mask = torch.tensor([[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in batch])
            steers = [self.grammar.steer(r.constraint) if r.constraint is not None else None for r in batch]
            ends = [self._row_end(steer) for steer in steers]
            kwargs: dict[str, Any] = {
                "input_ids": ids,
                "attention_mask": mask,
                "max_new_tokens": max(r.sampling.max_tokens for r in batch),
                "do_sample": False,
                "temperature": None,
                "top_p": None,
                "top_k": None,
                "pad_token_id": pad,
                "repetition_penalty": batch[0].sampling.repetition_penalty,
                "eos_token_id": sorted({t for end in ends for t in end}),
            }
            if any(steer is not None for steer in steers):
                kwargs["logits_processor"] = LogitsProcessorList([SteerProcessor(steers, ends, width)])
            with torch.inference_mode():
                out = self.hf.generate(**kwargs)
            for row, request in enumerate(batch):
                tokens = out[row, width:].tolist()[: request.sampling.max_tokens]
                cut = next((i for i, t in enumerate(tokens) if t in ends[row]), len(tokens))
                request.text = self.tokenizer.decode(tokens[:cut], skip_special_tokens=True)
        except Exception as exc:  # every caller of the batch hears of it
            for request in batch:
                request.error = exc
        finally:
            for request in batch:
                request.done.set()

    def _row_end(self, steer: grammar.Steer | None) -> set[int]:
        """The tokens that end a row: the grammar's own end token, else the model's end-of-generation ones."""
        if steer is not None and steer.eos is not None:
            return {steer.eos}
        eos = self.hf.generation_config.eos_token_id
        ends = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        return ends | ({self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set())

    def _stream(
        self, messages: list[dict[str, str]], constraint: Constraint | None, sampling: Sampling
    ) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class StopWhenSet(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

        with self._lock:
            kwargs = self._generate_kwargs(messages, constraint, sampling)
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            errors: list[BaseException] = []
            stop = threading.Event()  # set when the consumer closes the stream (Stop in the page, a dropped client)
            kwargs["stopping_criteria"] = StoppingCriteriaList([*kwargs.get("stopping_criteria", []), StopWhenSet()])

            def run() -> None:
                try:
                    with torch.inference_mode():
                        self.hf.generate(**kwargs, streamer=streamer)
                except BaseException as exc:  # re-raised in the consumer's thread below
                    errors.append(exc)
                    streamer.end()

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            try:
                yield from (piece for piece in streamer if piece)
            finally:  # a closed stream stops its generate before the lock goes to the next call
                stop.set()
                thread.join()
            if errors:
                raise errors[0]

    # ---- scoring ---------------------------------------------------------------------------------

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list[Any]:
        import torch

        # Prompts of one benchmark share a prefix (system prompt, instructions). Its keys and values
        # are computed once per call; the prompts' own tails then run in padded batches, shortest
        # first, each attending to that cache and to itself. (Packing tails into one row, as scoring
        # trees do, spends most attention on masked-out pairs: 1.5x slower on ARC, measured.)
        rows = prompts
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out: list[Any] = [None] * len(rows)
        with self._lock, torch.inference_mode():
            shared = common_prefix(rows)
            trunk = self._prefix_cache(rows[0][:shared])
            step = self.batch_size * 2
            for start in range(0, len(order), step):
                idx = order[start : start + step]
                last = self._forward_tails(trunk, shared, [rows[i][shared:] for i in idx])
                for i, row in zip(idx, torch.log_softmax(last.float(), dim=-1).numpy(), strict=True):
                    out[i] = row
        return out

    def _prefix_cache(self, tokens: list[int]) -> list[tuple[Any, Any]]:
        """Keys and values of every layer for ``tokens`` (batch 1), or [] for no tokens."""
        import torch

        if not tokens:
            return []
        cache = self.hf.get_decoder()(input_ids=torch.tensor([tokens]), use_cache=True).past_key_values
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _forward_tails(self, trunk: list[tuple[Any, Any]], n: int, tails: list[list[int]]) -> Any:
        """Logits at the last token of each tail, every tail continuing the ``n`` cached trunk tokens."""
        import torch
        from transformers import DynamicCache

        width, batch = max(len(t) for t in tails), len(tails)
        ids = torch.full((batch, width), self.tokenizer.pad_token_id, dtype=torch.long)
        for row, tail in enumerate(tails):
            ids[row, : len(tail)] = torch.tensor(tail, dtype=torch.long)
        # Every position sees the whole trunk and its own row causally; padding sits after the
        # last real token of a row, so no real token attends to it.
        allowed = torch.ones(width, n + width, dtype=torch.bool)
        allowed[:, n:] = torch.ones(width, width, dtype=torch.bool).tril()
        dtype = self.hf.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        kwargs: dict[str, Any] = {}
        if trunk:
            kwargs["past_key_values"] = DynamicCache(
                ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in trunk]
            )
        hidden = self.hf.get_decoder()(
            input_ids=ids,
            attention_mask=mask.expand(batch, 1, -1, -1),
            position_ids=torch.arange(n, n + width).expand(batch, -1),
            use_cache=bool(trunk),
            **kwargs,
        ).last_hidden_state
        ends = torch.tensor([len(t) - 1 for t in tails])
        return self.hf.get_output_embeddings()(hidden[torch.arange(batch), ends])

    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        import torch

        # Pairs that share a context (a question and its choices) form one tree: the context is
        # computed once, not once per choice; up to batch_size trees per forward pass.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, _) in enumerate(pairs):
            groups.setdefault(tuple(ctx), []).append(i)
        # Longest first, so the trees batched together are about as long and padding stays small.
        trees = sorted(groups.items(), key=lambda t: -(len(t[0]) + sum(len(pairs[i][1]) for i in t[1])))
        scores = [0.0] * len(pairs)
        with self._lock, torch.inference_mode():
            for start in range(0, len(trees), self.batch_size):
                batch = trees[start : start + self.batch_size]
                packed = [(list(ctx), [pairs[i][1][:-1] for i in idx]) for ctx, idx in batch]
                # The first continuation token is predicted at the context's last position (-1).
                wanted = [[[-1, *range(len(pairs[i][1]) - 1)] for i in idx] for _, idx in batch]
                for (_, idx), rows in zip(batch, self._forward_tree(packed, wanted), strict=True):
                    for i, row in zip(idx, rows, strict=True):
                        cont = torch.tensor(pairs[i][1])
                        logprobs = torch.log_softmax(row.float(), dim=-1)
                        scores[i] = float(logprobs[torch.arange(len(cont)), cont].sum())
        return scores

    def _forward_tree(self, trees: list[tuple[list[int], list[list[int]]]], wanted: list[list[list[int]]]) -> list:
        """Logits from one forward pass over trees, packed one per batch row.

        A tree is a trunk (shared tokens) and branches that each continue the trunk alone: a branch
        attends to the trunk and to itself, never to another branch, and its positions restart where
        the trunk ends, so each branch scores exactly as trunk + branch would alone. ``wanted[t][b]``
        lists offsets in branch b whose logits to return (-1: the trunk's last token); the result is
        ``logits[t][b]``, shaped (len(wanted[t][b]), vocab).
        """
        import torch

        width = max(len(trunk) + sum(len(b) for b in branches) for trunk, branches in trees)
        ids = torch.full((len(trees), width), self.tokenizer.pad_token_id, dtype=torch.long)
        positions = torch.zeros((len(trees), width), dtype=torch.long)
        allowed = torch.eye(width, dtype=torch.bool).repeat(len(trees), 1, 1)  # padding sees itself only
        index: list[list[list[int]]] = []
        for row, (trunk, branches) in enumerate(trees):
            n, at = len(trunk), len(trunk)
            ids[row, :n] = torch.tensor(trunk, dtype=torch.long)
            positions[row, :n] = torch.arange(n)
            allowed[row, :n, :n] = torch.ones(n, n, dtype=torch.bool).tril()
            index.append([])
            for branch, offsets in zip(branches, wanted[row], strict=True):
                m = len(branch)
                if m:
                    ids[row, at : at + m] = torch.tensor(branch, dtype=torch.long)
                    positions[row, at : at + m] = torch.arange(n, n + m)
                    allowed[row, at : at + m, :n] = True
                    allowed[row, at : at + m, at : at + m] = torch.ones(m, m, dtype=torch.bool).tril()
                index[row].append([n - 1 if k < 0 else at + k for k in offsets])
                at += m
        dtype = self.hf.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
        # The decoder runs over every position, the vocabulary projection only where a logit is wanted
        # (a fifth of a 135M model's compute per position is its 49k-word head).
        hidden = self.hf.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        rows_ix = [row for row, rows in enumerate(index) for ix in rows for _ in ix]
        cols_ix = [k for rows in index for ix in rows for k in ix]
        logits = self.hf.get_output_embeddings()(hidden[rows_ix, cols_ix])
        sizes = [len(ix) for rows in index for ix in rows]
        flat = iter(torch.split(logits, sizes))
        return [[next(flat) for _ in rows] for rows in index]


def special_tokens_of(tokenizer: Any) -> SpecialTokens:
    """BOS, EOS, and whether the tokenizer starts a text with BOS (as Llama 3's post-processor does)."""
    bos = tokenizer.bos_token_id
    with_specials = tokenizer("a", add_special_tokens=True)["input_ids"]
    add_bos = bos is not None and bool(with_specials) and with_specials[0] == bos
    return SpecialTokens(bos=bos, eos=tokenizer.eos_token_id, add_bos=add_bos)


class _Request:
    """One greedy generate call waiting to be decoded in a batch."""

    def __init__(self, prompt: list[int], constraint: Constraint | None, sampling: Sampling) -> None:
        self.prompt, self.constraint, self.sampling = prompt, constraint, sampling
        self.text = ""
        self.error: BaseException | None = None
        self.done = threading.Event()

    def compatible(self, other: _Request) -> bool:
        """Whether one ``generate`` can decode both: any two greedy calls without a repetition penalty.

        A sampled call draws from a generator of its own; a repetition penalty would also count a padded row's
        pad tokens (transformers' processor reads every input id), so its text could differ from its text alone.
        """
        return self.sampling.temperature == other.sampling.temperature == 0 and (
            self.sampling.repetition_penalty == other.sampling.repetition_penalty == 1.0
        )


class SteerProcessor:
    """Masks each row of a batch with its own steer (None: free); a row that has ended is left alone."""

    def __init__(self, steers: list[grammar.Steer | None], ends: list[set[int]], prompt_len: int) -> None:
        self.steers, self.ends, self.prompt_len = steers, ends, prompt_len
        self.consumed = [0] * len(steers)
        self.ended = [False] * len(steers)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Feed each row's new tokens to its steer; mask what it disallows."""
        import torch

        for row, steer in enumerate(self.steers):
            if steer is None or self.ended[row]:
                continue
            generated = input_ids[row, self.prompt_len :].tolist()
            for token in generated[self.consumed[row] :]:
                if token in self.ends[row]:
                    self.ended[row] = True  # transformers pads it from here on: nothing more to steer
                    break
                steer.advance(token)
            self.consumed[row] = len(generated)
            mask = None if self.ended[row] else steer.allowed()
            if mask is None:
                continue
            allowed = torch.zeros(scores.shape[-1], dtype=torch.bool)
            allowed[: mask.shape[0]] = torch.from_numpy(mask)
            scores[row] = scores[row].masked_fill(~allowed, float("-inf"))
        return scores


class SampleProcessor:
    """Samples the next token with this request's own generator; every other token's score becomes -inf.

    Runs last, after the repetition penalty and the constraint's mask, so that greedy search takes the
    sampled token. Temperature and nucleus (top-p) as in :func:`tutor.models.decoding.pick_token`.
    """

    def __init__(self, sampling: Sampling) -> None:
        import torch

        self.temperature = sampling.temperature
        self.top_p = sampling.top_p
        self.generator = torch.Generator()
        if sampling.seed is None:
            self.generator.seed()  # a fresh random seed, drawn without touching the global generator
        else:
            self.generator.manual_seed(sampling.seed)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Draw one token per row; return scores that leave only it."""
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= self.top_p  # keeps at least the top token
            probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
        token = torch.multinomial(probs, num_samples=1, generator=self.generator)
        return torch.full_like(scores, float("-inf")).scatter(-1, token, 0.0)


def common_prefix(rows: list[list[int]]) -> int:
    """How many leading tokens every row shares, leaving each row at least one token of its own."""
    n = min(len(r) for r in rows) - 1
    for r in rows[1:]:
        k = 0
        while k < n and r[k] == rows[0][k]:
            k += 1
        n = k
    return max(n, 0)
