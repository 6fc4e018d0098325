"""Continuous batching: many sequences decoded together in one llama.cpp context, by one worker thread.

Callers on any thread hand the :class:`Scheduler` a job (:class:`GenJob` for generate/stream, :class:`ScoreJob`
for choose/loglikelihood) and read its results from the job's queue. One worker thread owns the context: each
step it admits waiting jobs (first come, first served, while a sequence id and the KV-cache budget allow),
frees cancelled ones, feeds every running sequence's pending tokens in ONE ``llama_decode`` (a prompt in chunks,
a generating sequence its last token plus any forced by its grammar) and hands each sequence the logits it asked
for. Reading the weights once per step for all sequences is where the throughput comes from.

Each sequence owns a KV-cache sequence id (a *slot*). A finished job leaves its tokens in its slot, so a later
prompt that starts the same way reuses them; a prompt that shares a prefix with another slot copies those cells
(``llama_memory_seq_cp``: in a unified cache the cells are shared, not duplicated), and two prompts fed at once
that share a prefix compute it once. Nothing here changes a sequence's numbers: with flash attention llama.cpp's
CPU kernels give each row the same bits whatever else is in the batch or the cache (see ``llamacpp.py``).
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tutor.models.base import ModelError, Sampling
from tutor.models.decoding import pick_token

SHARE_MIN = 16  # fewest shared tokens worth copying from another sequence (a context may ask for more)
# A background sequence with at most this many tokens pending (its choice and a few forced: a JSON key) feeds them
# in step with the others; a longer forced run (a course sentence of an extractive answer) goes in at once, since
# one more micro-batch costs less than its length in steps of waiting.
LOCKSTEP_MAX = 4
CANCEL_WAIT_S = 60.0  # how long a cancelled stream waits for the worker to free its sequence (one decode step)
BACKGROUND, INTERACTIVE = 0, 1  # job priorities: someone waits to read an interactive job's first words
_PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar("tutor_model_priority", default=BACKGROUND)


@contextlib.contextmanager
def interactive() -> Iterator[None]:
    """Model calls made inside run ahead of background work (a student's chat ahead of the quizzes being written).

    An interactive job is admitted before every waiting background job (on llama.cpp it has a sequence of its
    own beyond those background work may hold), and its prompt is fed before theirs in each step. Only the order
    changes: a job's tokens are the same whatever its priority (greedy decoding does not depend on what else
    runs). Calls made in worker threads inherit the setting where the thread runs in a copy of the caller's
    context.
    """
    token = _PRIORITY.set(INTERACTIVE)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def interactive_stream(make: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """Iterate ``make()`` with its model calls :func:`interactive`; step it on one thread (``tutor.threads``).

    A generator resumed on another thread runs in that thread's context, where the setting is not made.
    """
    with interactive():
        yield from make()


class Context(Protocol):
    """The few operations the scheduler needs from an inference context (llama.cpp's, or a test's)."""

    def decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """Evaluate ``(token, position, sequence id, wants logits)`` items in one batch; raise on failure."""

    def logits(self, i: int) -> np.ndarray:
        """The logits of the ``i``-th item of the last batch that asked for them (a copy)."""

    def seq_rm(self, seq: int, p0: int) -> None:
        """Drop sequence ``seq``'s cells at positions ``>= p0``."""

    def copy_prefix(self, src: int, dst: int, p0: int, p1: int) -> None:
        """Give ``dst`` (holding positions ``< p0`` already) the cells of ``src`` at positions ``[p0, p1)``."""


_END = object()  # the last item on a job's queue when it finished normally


class Job:
    """One request in the running batch: tokens to feed, and what to do with the logits they give.

    ``tokens`` are every token of the sequence so far (prompt, then generated ones), ``n_fed`` how many of them
    sit in the KV cache, ``want_from`` the first position whose logits the job needs.
    """

    def __init__(self, tokens: list[int], want_from: int, reserve: int) -> None:
        self.tokens = tokens
        self.want_from = want_from
        self.reserve = reserve  # KV cells the job may come to hold (its prompt plus its token budget)
        self.n_prompt = len(tokens)
        self.priority = _PRIORITY.get()  # read on the caller's thread, where the request was made
        self.arrival = 0  # submission order: prompts of one priority are fed first come, first served
        self.n_fed = 0
        self.seq: int | None = None
        self.rows: list[np.ndarray] = []  # logits gathered since the last call of on_logits
        self.out: queue.SimpleQueue = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.freed = threading.Event()  # set once the job holds no sequence (finished, failed or cancelled)

    def begin(self) -> bool:
        """Called once when admitted, before any token is fed; True if the job is already done."""
        return False

    def pending(self) -> int:
        """Tokens of the sequence not yet in the KV cache."""
        return len(self.tokens) - self.n_fed

    def on_logits(self, rows: np.ndarray) -> bool:
        """Take the logits of positions ``want_from...``; True when done."""
        raise NotImplementedError

    def finish(self) -> None:
        """Called once when the job is done, before it leaves its slot."""
        self.out.put(_END)

    def fail(self, exc: BaseException) -> None:
        """Hand an error to the caller."""
        self.out.put(exc)


class ScoreJob(Job):
    """Logits of the last ``n_rows`` positions of ``tokens`` (choose, loglikelihood)."""

    def __init__(self, tokens: list[int], n_rows: int = 1) -> None:
        super().__init__(list(tokens), len(tokens) - n_rows, len(tokens))
        self.result: np.ndarray | None = None

    def on_logits(self, rows: np.ndarray) -> bool:
        """Keep the rows: the job is done."""
        self.result = rows
        return True


class GenJob(Job):
    """One answer decoded under a steer: sampling, stop condition and forced tokens per sequence.

    Text goes to the job's queue as it is decoded. When the steer allows exactly one token, no choice is left:
    the token is taken without asking for logits, and fed with the next step's batch.
    """

    def __init__(
        self,
        prompt: list[int],
        steer: Any,
        sampling: Sampling,
        budget: int,
        *,
        piece: Callable[[int], bytes],
        is_end: Callable[[int, Any], bool],
    ) -> None:
        super().__init__(list(prompt), len(prompt) - 1, len(prompt) + budget)
        self.steer, self.sampling, self.budget = steer, sampling, budget
        self.start = len(prompt)
        self.rng = np.random.default_rng(sampling.seed)
        self.mask: np.ndarray | None = None
        self._piece, self._is_end = piece, is_end
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def begin(self) -> bool:
        """Take the tokens the grammar forces before the first choice (a JSON document's opening)."""
        return self._force()

    def on_logits(self, rows: np.ndarray) -> bool:
        """Choose the next token from the last row, then any the grammar forces after it.

        Without a mask (the steer said nothing can be forced) the model chooses freely and the grammar checks its
        choice; only a refused choice is made again among the allowed tokens. Greedy, that is the masked argmax;
        sampled, the masked distribution (a refused draw is redrawn from the allowed tokens alone).
        """
        generated, row = self.tokens[self.start :], rows[-1]
        token = pick_token(row, self.sampling, self.rng, self.mask, generated)
        if self.mask is None and not self.steer.accepts(token):
            token = pick_token(row, self.sampling, self.rng, self.steer.allowed(), generated)
        return self._take(token) or self._force()

    def finish(self) -> None:
        """Flush a split UTF-8 character, then end."""
        tail = self._text.decode(b"", final=True)
        if tail:
            self.out.put(tail)
        super().finish()

    def _take(self, token: int) -> bool:
        if self._is_end(token, self.steer):
            return True
        self.tokens.append(token)
        self.want_from = len(self.tokens) - 1
        self.steer.advance(token)
        text = self._text.decode(self._piece(token))
        if text:
            self.out.put(text)
        return len(self.tokens) - self.start >= self.budget

    def _force(self) -> bool:
        while True:
            if not self.steer.may_force():
                self.mask = None  # the model's choice is checked instead (on_logits)
                return False
            self.mask = self.steer.allowed()
            if self.mask is None or np.count_nonzero(self.mask) != 1:
                return False
            if self._take(int(np.flatnonzero(self.mask)[0])):
                return True


@dataclass
class Slot:
    """A KV-cache sequence id: the tokens whose cells it holds, and the job using it (None: idle)."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    job: Job | None = None
    used: int = 0  # step of last use, for evicting the least recently used idle cache


def id_runs(seqs: set[int]) -> int:
    """How many runs of consecutive ids ``seqs`` makes ({0, 1, 3}: two)."""
    return sum(seq - 1 not in seqs for seq in seqs)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


class Scheduler:
    """Merges concurrent jobs into one running batch over ``context`` (see the module docstring).

    Args:
        context: the inference context; only the worker thread touches it.
        n_ctx: KV-cache cells one job may hold (its prompt plus its token budget).
        n_batch: most tokens per decode step.
        max_seqs: most sequences of background work decoded at once.
        interactive_seqs: sequences beyond ``max_seqs`` that only interactive jobs may take (the context has
            ``max_seqs + interactive_seqs`` sequence ids).
        shared_kv: the sequences share ``n_ctx`` cells (a unified cache): jobs are admitted while their reserves fit
            together, idle caches evicted first. False: each sequence has ``n_ctx`` cells of its own.
        min_share: fewest tokens of a prefix worth copying from another sequence instead of computing them.
    """

    def __init__(
        self,
        context: Context,
        *,
        n_ctx: int,
        n_batch: int,
        max_seqs: int,
        interactive_seqs: int = 0,
        shared_kv: bool = True,
        min_share: int = SHARE_MIN,
    ) -> None:
        self.context, self.n_ctx, self.n_batch = context, n_ctx, n_batch
        self.shared_kv, self.min_share = shared_kv, min_share
        self.max_seqs = max_seqs
        self.slots = [Slot(seq) for seq in range(max_seqs + interactive_seqs)]
        self.steps = 0  # decode steps run: tests and benchmarks read it
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._arrivals = 0

    # ---- what callers use ---------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """Jobs holding a sequence now."""
        return sum(slot.job is not None for slot in self.slots)

    @property
    def waiting(self) -> int:
        """Jobs waiting for a sequence or KV cells."""
        return len(self._waiting)

    def submit(self, job: Job) -> None:
        """Queue ``job``; the worker admits it when a sequence and its KV reserve are free."""
        if job.reserve > self.n_ctx:
            raise ModelError(f"{job.reserve} tokens do not fit the {self.n_ctx}-token context: shorten the input")
        with self._cond:
            if self._closed:
                raise ModelError("the model is closed: load it again")
            self._arrivals += 1
            job.arrival = self._arrivals
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llamacpp-batch", daemon=True)
                self._thread.start()
            self._cond.notify()

    def stream(self, job: GenJob) -> Iterator[str]:
        """Submit ``job`` and yield its text; closing the generator frees its sequence before returning."""
        self.submit(job)
        try:
            while (item := job.out.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancel(job)

    def score(self, jobs: list[ScoreJob]) -> list[np.ndarray]:
        """Run ``jobs`` together; their logits rows, in order."""
        try:
            for job in jobs:
                self.submit(job)
            for job in jobs:
                item = job.out.get()
                if isinstance(item, BaseException):
                    raise item
            return [job.result for job in jobs]  # type: ignore[misc]
        finally:
            for job in jobs:
                self.cancel(job)

    def cancel(self, job: Job) -> None:
        """Stop ``job`` and wait until its sequence and KV cells are freed (a no-op for a finished job)."""
        if job.freed.is_set():
            return
        job.cancelled.set()
        with self._cond:
            self._cond.notify()
        if not job.freed.wait(CANCEL_WAIT_S):
            raise ModelError("the decode loop did not free a cancelled sequence: the model is stuck; reload it")

    def close(self) -> None:
        """Stop the worker; jobs still queued or running fail with :class:`ModelError`."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        closed = ModelError("the model was closed while this request ran: load it again")
        for job in [*self._waiting, *(s.job for s in self.slots if s.job is not None)]:
            job.fail(closed)
            job.freed.set()

    # ---- the worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self.running:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                with self._cond:
                    self._drop_cancelled()
                    self._admit()
                batch = self._plan()
                if batch:
                    self._step(batch)
            except BaseException as exc:  # a bug in the loop: its callers hear of it, and the worker carries on
                with self._cond:
                    for job in [s.job for s in self.slots if s.job is not None]:
                        job.fail(exc)
                    for slot in self.slots:
                        self._release(slot, keep=False)

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._waiting if j.cancelled.is_set()]:
            self._waiting.remove(job)
            job.freed.set()
        for slot in self.slots:
            if slot.job is not None and slot.job.cancelled.is_set():
                self._release(slot, keep=False)

    def _admit(self) -> None:
        """First come, first served within a priority: the oldest waiting job of the highest priority goes first.

        Background jobs hold at most ``max_seqs`` sequences; the ``interactive_seqs`` beyond them are kept for
        interactive jobs, so that a student's question arriving behind a queue of background work starts at the
        next step rather than after one of those jobs ends.
        """
        while self._waiting:
            free = [s for s in self.slots if s.job is None]
            job = max(self._waiting, key=lambda j: (j.priority, -j.arrival))
            background = sum(s.job is not None and s.job.priority < INTERACTIVE for s in self.slots)
            if not free or (job.priority < INTERACTIVE and background >= self.max_seqs) or not self._make_room(job):
                return
            self._waiting.remove(job)
            cap = job.want_from  # at least one token must be fed for the logits the job wants
            # The longest cached prefix first (recomputing it costs far more than anything else here); then, with
            # a stream per sequence, the slot that keeps the running ids in fewest runs (see _step); then the
            # least recently used cache.
            running = {s.seq for s in self.slots if s.job is not None}
            slot = max(
                free,
                key=lambda s: (
                    min(common_prefix(s.tokens, job.tokens), cap),
                    0 if self.shared_kv else -id_runs(running | {s.seq}),
                    -s.used,
                ),
            )
            keep = min(common_prefix(slot.tokens, job.tokens), cap)
            self.context.seq_rm(slot.seq, keep)
            slot.tokens, slot.job, job.seq, job.n_fed = job.tokens[:keep], job, slot.seq, keep
            try:
                done = job.begin()
            except Exception as exc:  # a grammar that refuses its own forced token: the caller hears of it
                job.fail(exc)
                self._release(slot, keep=False)
                continue
            if done:
                self._done(slot)

    def _make_room(self, job: Job) -> bool:
        """Whether ``job``'s reserve fits beside the running jobs', evicting idle caches as needed."""
        if not self.shared_kv:
            return True  # every sequence has n_ctx cells of its own, and submit() refused a job that needs more
        reserved = sum(s.job.reserve for s in self.slots if s.job is not None)
        idle = sorted((s for s in self.slots if s.job is None and s.tokens), key=lambda s: s.used)
        cached = sum(len(s.tokens) for s in idle)
        while reserved + cached + job.reserve > self.n_ctx and idle:
            slot = idle.pop(0)
            cached -= len(slot.tokens)
            self.context.seq_rm(slot.seq, 0)
            slot.tokens = []
        return reserved + cached + job.reserve <= self.n_ctx

    def _plan(self) -> list[tuple[Slot, list[int]]]:
        """Each running sequence's tokens for this step: generating ones first, then prompts by priority and arrival."""
        running = [s for s in self.slots if s.job is not None]
        running.sort(key=lambda s: (s.job.n_fed < s.job.n_prompt, -s.job.priority, s.job.arrival))  # type: ignore[union-attr]
        room, planned, batch = self.n_batch, [], []
        lockstep = self._lockstep(running)
        for slot in running:
            job = slot.job
            assert job is not None, "only running slots are planned"
            self._copy_prefix(slot, job)
            if self._wait_for_shared(job, planned):
                continue
            take = min(room, lockstep) if self._in_step(job) else room
            chunk = job.tokens[job.n_fed : job.n_fed + take]
            if chunk:
                batch.append((slot, chunk))
                planned.append(job.tokens[: job.n_fed + len(chunk)])
                room -= len(chunk)
        return batch

    def _lockstep(self, running: list[Slot]) -> int:
        """The most tokens a short-pending background sequence feeds this step: as many as each such one has.

        With a KV stream per sequence, llama.cpp splits a batch so that each micro-batch takes the same number of
        tokens from every sequence in it (``split_equal``): a sequence feeding three tokens (its choice and two its
        grammar forced, a JSON key) beside others feeding one costs a second graph computation for its last two.
        Fed one step at a time instead, they ride along in steps that run anyway. A sequence decoding alone, an
        interactive one (someone reads it as it comes) and a long forced run (:data:`LOCKSTEP_MAX`) feed all they
        have at once, and prompts are fed in chunks whatever this says.
        """
        if self.shared_kv:
            return self.n_batch  # one shared cache: llama.cpp splits the batch as it comes (split_simple)
        if any(s.job is not None and s.job.n_fed < s.job.n_prompt for s in running):
            # A step that feeds a prompt is many micro-batches anyway: a sequence held back from it would wait a
            # whole such step (up to n_batch tokens) for each token, where one more small micro-batch costs little.
            return self.n_batch
        generating = [s.job for s in running if s.job is not None and s.job.n_fed >= s.job.n_prompt]
        pending = [n for job in generating if 0 < (n := job.pending()) <= LOCKSTEP_MAX]
        return min(pending) if len(pending) > 1 else self.n_batch

    def _in_step(self, job: Job) -> bool:
        """Whether ``job`` feeds in step with the others (see :meth:`_lockstep`)."""
        return job.n_fed >= job.n_prompt and job.priority < INTERACTIVE and job.pending() <= LOCKSTEP_MAX

    def _copy_prefix(self, slot: Slot, job: Job) -> None:
        """Take cells another slot already holds for this job's next tokens, instead of computing them."""
        if job.n_fed >= job.want_from:
            return
        best, src = job.n_fed + self.min_share - 1, None
        for other in self.slots:
            if other is not slot:
                n = min(common_prefix(other.tokens, job.tokens), job.want_from)
                if n > best:
                    best, src = n, other
        if src is not None:
            self.context.seq_rm(slot.seq, job.n_fed)
            self.context.copy_prefix(src.seq, slot.seq, job.n_fed, best)
            slot.tokens, job.n_fed = job.tokens[:best], best

    def _wait_for_shared(self, job: Job, planned: list[list[int]]) -> bool:
        """Whether a prompt fed earlier in this step will compute enough of this one's prefix to wait for it."""
        if job.want_from - job.n_fed < self.min_share:
            return False
        return any(min(common_prefix(p, job.tokens), job.want_from) >= job.n_fed + self.min_share for p in planned)

    def _step(self, batch: list[tuple[Slot, list[int]]]) -> None:
        if not self.shared_kv:
            # With a KV stream per sequence llama.cpp splits a batch into micro-batches of ascending, consecutive
            # sequence ids (llama_batch_allocr::split_equal, "sequential"): in planning order, four sequences can
            # take four graph computations a step where one does. In id order a run of consecutive ids takes one.
            batch = sorted(batch, key=lambda planned: planned[0].seq)
        items, wanted = [], []
        for slot, chunk in batch:
            job = slot.job
            assert job is not None, "planned slots hold jobs"
            rows = []
            for k, token in enumerate(chunk):
                pos = job.n_fed + k
                if pos >= job.want_from:
                    rows.append(len(items))
                items.append((token, pos, slot.seq, pos >= job.want_from))
            wanted.append(rows)
        self.steps += 1
        try:
            self.context.decode(items)
        except Exception as exc:  # every sequence of the batch fails; the others carry on at the next step
            for slot, _chunk in batch:
                slot.job.fail(exc)  # type: ignore[union-attr]
                self._release(slot, keep=False)
            return
        for (slot, chunk), rows in zip(batch, wanted, strict=True):
            self._after(slot, chunk, [self.context.logits(i) for i in rows])

    def _after(self, slot: Slot, chunk: list[int], rows: list[np.ndarray]) -> None:
        job = slot.job
        assert job is not None, "planned slots hold jobs"
        job.n_fed += len(chunk)
        slot.tokens.extend(chunk)
        slot.used = self.steps
        job.rows.extend(rows)
        if job.n_fed < len(job.tokens):
            return  # a long prompt: more chunks to feed
        rows_now, job.rows = np.stack(job.rows), []
        try:
            done = job.on_logits(rows_now)
        except Exception as exc:  # a grammar error reaches its caller; the other sequences carry on
            job.fail(exc)
            self._release(slot, keep=False)
            return
        if done:
            self._done(slot)

    def _done(self, slot: Slot) -> None:
        job = slot.job
        assert job is not None, "a finished slot holds its job"
        job.finish()
        self._release(slot, keep=True)

    def _release(self, slot: Slot, *, keep: bool) -> None:
        """Free the slot's sequence; ``keep`` leaves its cells as a cache for a later prompt."""
        job, slot.job = slot.job, None
        if not keep:
            self.context.seq_rm(slot.seq, 0)
            slot.tokens = []
        if job is not None:
            job.freed.set()
