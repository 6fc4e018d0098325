"""The batch scheduler's bookkeeping over a scripted context: admission, KV budget, shared prefixes, cancellation.

The real model's side (same bits whatever the batch, concurrent callers merged) is tests/test_models_batch.py.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tutor.models.base import ModelError, Sampling
from tutor.models.batching import GenJob, Scheduler, ScoreJob, common_prefix, id_runs, interactive
from tutor.models.grammar import FREE, FreeSteer

VOCAB = 16
END = 0


class ScriptedContext:
    """A KV cache that records every batch; the logits always predict ``token + 1`` (END after 9)."""

    def __init__(self) -> None:
        self.cells: dict[int, dict[int, int]] = {}  # seq -> position -> token
        self.batches: list[list[tuple[int, int, int, bool]]] = []
        self.copies: list[tuple[int, int, int, int]] = []
        self.gate: threading.Event | None = None  # when set, decode waits for it (to pile up callers)
        self.entered = threading.Event()  # a decode has started
        self.delay = 0.0  # seconds per decode: a slow model, for streams that must still run when closed

    def decode(self, items):
        self.entered.set()
        time.sleep(self.delay)
        if self.gate is not None:
            self.gate.wait(5)
        for token, pos, seq, _ in items:
            cells = self.cells.setdefault(seq, {})
            assert pos == len(cells), f"seq {seq}: position {pos} after {len(cells)} cells"
            cells[pos] = token
        self.batches.append(list(items))

    def logits(self, i):
        token = self.batches[-1][i][0]
        row = np.zeros(VOCAB, dtype=np.float32)
        row[END if token >= 9 else token + 1] = 1.0
        return row

    def seq_rm(self, seq, p0):
        self.cells[seq] = {p: t for p, t in self.cells.get(seq, {}).items() if p < p0}

    def copy_prefix(self, src, dst, p0, p1):
        self.copies.append((src, dst, p0, p1))
        for p in range(p0, p1):
            self.cells.setdefault(dst, {})[p] = self.cells[src][p]


def gen(prompt, max_tokens=20):
    return GenJob(
        prompt, FREE, Sampling(max_tokens=max_tokens), max_tokens, piece=lambda t: str(t).encode() + b",",
        is_end=lambda t, _s: t == END,
    )  # fmt: skip


def text(scheduler, job):
    return "".join(scheduler.stream(job))


def drain(job):
    """The text of a job submitted directly, once it ends."""
    pieces = []
    while not isinstance(item := job.out.get(timeout=10), BaseException):
        if not isinstance(item, str):
            return "".join(pieces)
        pieces.append(item)
    raise item


def submit_together(sched, ctx, jobs):
    """Hold the worker in a first step of its own while ``jobs`` queue: they are admitted at one step."""
    ctx.gate = threading.Event()
    blocker = gen([9], max_tokens=1)
    sched.submit(blocker)
    assert ctx.entered.wait(5), "the worker runs the blocker's step"
    for job in jobs:
        sched.submit(job)
    ctx.gate.set()
    drain(blocker)
    return [drain(job) for job in jobs]


def seqs(batch):
    return {seq for _, _, seq, _ in batch}


def test_a_sequence_decodes_until_its_end_token_and_keeps_its_cells_for_the_next_prompt():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=100, n_batch=32, max_seqs=2)
    assert text(sched, gen([1, 2, 3])) == "4,5,6,7,8,9,"
    assert sched.running == sched.waiting == 0
    first = len(ctx.batches)
    assert text(sched, gen([1, 2, 3])) == "4,5,6,7,8,9,"
    assert ctx.batches[first][0][:2] == (3, 2), "the same prompt feeds only its last token again"


def test_prompts_admitted_together_decode_in_one_batch_and_compute_a_shared_prefix_once():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=64, max_seqs=4)
    shared = [5] * 40
    outs = submit_together(sched, ctx, [gen([*shared, 1 + k], max_tokens=3) for k in range(3)])
    assert outs == ["2,3,4,", "3,4,5,", "4,5,6,"]
    fed = sum(len(b) for b in ctx.batches[1:])
    assert fed == 41 + 1 + 1 + 3 * 2, f"the 40 shared tokens were fed once and copied twice ({fed} fed)"
    assert [(dst, p0, p1) for _src, dst, p0, p1 in ctx.copies] == [(2, 0, 40), (3, 0, 40)]
    assert max(len(seqs(b)) for b in ctx.batches) == 3, "the three sequences decode in one batch"


def test_max_seqs_bounds_a_batch_and_the_rest_wait_their_turn():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=64, max_seqs=2)
    outs = submit_together(sched, ctx, [gen([k], max_tokens=3) for k in (1, 2, 3)])
    assert outs == ["2,3,4,", "3,4,5,", "4,5,6,"]
    assert max(len(seqs(b)) for b in ctx.batches) == 2
    firsts = [next(i for i, b in enumerate(ctx.batches) if (t, 0) in {(x[0], x[1]) for x in b}) for t in (1, 2, 3)]
    assert firsts[0] <= firsts[1] < firsts[2], "first come, first served"


def test_a_job_waits_while_the_kv_budget_is_taken():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=50, n_batch=64, max_seqs=4)
    outs = submit_together(sched, ctx, [gen([1] * 20, 20), gen([2] * 20, 20)])  # 40 cells each: one at a time
    assert outs == ["2,3,4,5,6,7,8,9,", "3,4,5,6,7,8,9,"]
    assert not [b for b in ctx.batches if len(seqs(b)) > 1], "two 40-cell reserves never ran in 50 cells at once"
    with pytest.raises(ModelError, match="do not fit"):
        sched.submit(gen([1] * 45, 20))


def test_cancelled_streams_free_their_sequences_and_cells():
    ctx = ScriptedContext()
    ctx.delay = 0.001
    sched = Scheduler(ctx, n_ctx=1000, n_batch=64, max_seqs=4)
    for _ in range(100):
        never_ends = GenJob(
            [1, 1, 1], FREE, Sampling(max_tokens=500), 500, piece=lambda t: b"x", is_end=lambda t, s: False
        )
        stream = sched.stream(never_ends)
        next(stream)
        stream.close()
    assert sched.running == sched.waiting == 0
    assert all(not cells for cells in ctx.cells.values()), "a cancelled sequence leaves no cells"


def test_score_jobs_return_the_rows_asked_for():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=100, n_batch=4, max_seqs=2)  # a 7-token prompt in two chunks
    rows = sched.score([ScoreJob([1, 2, 3, 4, 5, 6, 7], n_rows=3), ScoreJob([8], n_rows=1)])
    assert [r.argmax(axis=-1).tolist() for r in rows] == [[6, 7, 8], [9]]


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


class RefusingSteer(FreeSteer):
    """A grammar that allows every token and then refuses the one chosen (an engine error mid-answer)."""

    def advance(self, token):
        raise RuntimeError(f"llguidance refused token {token}")


def test_an_error_in_one_sequence_reaches_its_caller_and_the_others_finish():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=64, max_seqs=4)
    broken = GenJob([1], RefusingSteer(), Sampling(max_tokens=5), 5, piece=lambda t: b"x", is_end=lambda t, s: False)
    fine = gen([3], max_tokens=4)
    ctx.gate = threading.Event()
    sched.submit(fine)
    sched.submit(broken)
    ctx.gate.set()
    with pytest.raises(RuntimeError, match="refused token 2"):
        drain(broken)
    assert drain(fine) == "4,5,6,7,"
    assert sched.running == 0


def test_a_failed_decode_fails_its_batch_and_the_next_request_runs():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=64, max_seqs=2)
    decode = ctx.decode
    ctx.decode = lambda items: (_ for _ in ()).throw(ModelError("llama.cpp failed to decode"))
    with pytest.raises(ModelError, match="failed to decode"):
        text(sched, gen([1]))
    ctx.decode = decode
    assert text(sched, gen([5], max_tokens=2)) == "6,7,"


def interactive_gen(prompt, max_tokens=20):
    with interactive():
        return gen(prompt, max_tokens)  # the priority is read where the job is made, on the caller's thread


def first_step(ctx, token, pos=0):
    """The index of the first batch that fed ``token`` at ``pos``."""
    return next(i for i, b in enumerate(ctx.batches) if any(t == token and p == pos for t, p, _, _ in b))


def test_an_interactive_job_takes_the_kept_sequence_while_background_jobs_fill_theirs():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=64, max_seqs=2, interactive_seqs=1)
    background = [gen([k], max_tokens=4) for k in (1, 2, 3)]
    chat = interactive_gen([7], max_tokens=2)
    outs = submit_together(sched, ctx, [*background, chat])
    assert outs == ["2,3,4,5,", "3,4,5,6,", "4,5,6,7,", "8,9,"], "the order changes nothing in what a job decodes"
    assert first_step(ctx, 7) == first_step(ctx, 1), "the chat starts with the first background jobs"
    assert first_step(ctx, 3) > first_step(ctx, 1), "the third background job waits for one of their sequences"
    assert max(len(seqs(b)) for b in ctx.batches) == 3, "two background sequences and the kept one"


def test_background_jobs_alone_never_take_the_kept_sequence():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=64, max_seqs=2, interactive_seqs=1)
    submit_together(sched, ctx, [gen([k], max_tokens=3) for k in (1, 2, 3, 4)])
    assert max(len(seqs(b)) for b in ctx.batches) == 2


def test_a_waiting_interactive_job_is_admitted_before_older_background_jobs():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=64, max_seqs=1)  # no kept sequence: priority alone orders the queue
    outs = submit_together(sched, ctx, [gen([1], max_tokens=2), gen([3], max_tokens=2), interactive_gen([7], 2)])
    assert outs == ["2,3,", "4,5,", "8,9,"]
    assert first_step(ctx, 7) < first_step(ctx, 1) < first_step(ctx, 3), "the chat, then first come, first served"


def test_interactive_prompts_are_fed_before_background_prompts_in_a_step():
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=400, n_batch=8, max_seqs=2, interactive_seqs=1)
    long_prompt = gen([1, 2, 3, 4, 5, 6, 7, 8] * 3, max_tokens=1)  # 24 tokens: three full steps on its own
    chat = interactive_gen([2, 3, 4, 5, 6, 7, 8, 9], max_tokens=1)  # arrives second, fills one step
    submit_together(sched, ctx, [long_prompt, chat])
    step = ctx.batches[first_step(ctx, 2)]
    assert len(step) == 8 and len(seqs(step)) == 1, "the chat's prompt has the whole step to itself"
    assert first_step(ctx, 1) > first_step(ctx, 2), "the background prompt goes in after it"


def test_with_a_stream_per_sequence_a_step_feeds_consecutive_ids_in_ascending_order():
    """llama.cpp splits a multi-stream batch into runs of ascending consecutive ids: one run is one graph a step."""
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=200, n_batch=64, max_seqs=4, interactive_seqs=1, shared_kv=False)
    for first in (1, 2, 3, 4, 5):  # five prompts, one after another: one in each of the five slots
        text(sched, gen([first, 9]))
    for first in (2, 4):  # their caches reused: slots 1 and 3 are now the most recently used
        text(sched, gen([first, 9, 1]))
    start = len(ctx.batches)
    submit_together(sched, ctx, [gen([6, 7]), gen([7, 8]), gen([8, 6])])  # no prefix cached: any free slot
    steps = [[seq for _, _, seq, _ in batch] for batch in ctx.batches[start + 1 :]]  # after the blocker's step
    assert all(ids == sorted(ids) for ids in steps), steps
    # While all three run, they sit side by side (least recently used alone would have taken slots 0, 2 and 4); a
    # sequence that ends early may leave a gap, which costs a second micro-batch until the next admission fills it.
    together = [ids for ids in steps if len(set(ids)) >= 3]
    assert together and all(id_runs(set(ids)) == 1 for ids in together), steps


class NoFiveSteer(FreeSteer):
    """A grammar that refuses token 5 and then allows only 7; it never forces a token. Counts its masks."""

    def __init__(self) -> None:
        self.masks = 0

    def allowed(self):
        self.masks += 1
        mask = np.zeros(VOCAB, dtype=bool)
        mask[7] = True
        return mask

    def accepts(self, token):
        return token != 5


def test_a_steer_that_forces_nothing_checks_the_models_choice_and_masks_only_a_refused_one():
    sched = Scheduler(ScriptedContext(), n_ctx=100, n_batch=32, max_seqs=1)
    steer = NoFiveSteer()
    job = GenJob(
        [3], steer, Sampling(max_tokens=10), 10, piece=lambda t: str(t).encode() + b",", is_end=lambda t, _: t == END
    )
    assert text(sched, job) == "4,7,8,9,"  # 5 refused: the mask's choice instead
    assert steer.masks == 1, "a mask only for the refused choice"


class ForceAfterFourSteer(FreeSteer):
    """A grammar that, after token 4, forces 12 then 13 (a JSON key after a value), or ``run``; free otherwise."""

    def __init__(self, run=(12, 13)) -> None:
        self.run = list(run)
        self.forced: list[int] = []

    def advance(self, token):
        if token == 4:
            self.forced = list(self.run)
        elif self.forced and token == self.forced[0]:
            self.forced.pop(0)

    def may_force(self):
        return bool(self.forced)

    def allowed(self):
        mask = np.zeros(VOCAB, dtype=bool)
        mask[self.forced[0] if self.forced else slice(None)] = True
        return mask


def forcing_gen(prompt, run=(12, 13)):
    return GenJob(
        prompt, ForceAfterFourSteer(run), Sampling(max_tokens=8), 8, piece=lambda t: str(t).encode() + b",",
        is_end=lambda t, _s: t == END,
    )  # fmt: skip


def test_with_a_stream_per_sequence_forced_tokens_are_fed_in_step_with_the_other_sequences():
    """llama.cpp takes the same number of tokens from every sequence of a micro-batch: uneven steps cost two."""
    ctx = ScriptedContext()
    sched = Scheduler(ctx, n_ctx=200, n_batch=64, max_seqs=4, interactive_seqs=1, shared_kv=False)
    alone = text(sched, forcing_gen([3]))
    start = len(ctx.batches)
    together = submit_together(sched, ctx, [forcing_gen([3]), gen([1, 2])])
    assert together[0] == alone == "4,12,13,"  # 12 and 13 forced after 4 (then the end: see ScriptedContext)
    generating = [b for b in ctx.batches[start:] if len(seqs(b)) >= 2 and all(pos > 0 for _, pos, _, _ in b)]
    counts = [sorted({sum(s == seq for _, _, s, _ in batch) for seq in seqs(batch)}) for batch in generating]
    assert counts and all(len(c) == 1 for c in counts), f"tokens per sequence in each step: {counts}"


def test_a_long_forced_run_or_an_interactive_one_goes_in_at_once_beside_other_sequences():
    """Fed one a step, a course sentence of 30 forced tokens would wait 30 steps to save one micro-batch."""

    def interactive_forcing():
        with interactive():
            return forcing_gen([3])

    for make in (lambda: forcing_gen([3], run=range(10, 16)), interactive_forcing):
        ctx = ScriptedContext()
        sched = Scheduler(ctx, n_ctx=200, n_batch=64, max_seqs=4, interactive_seqs=1, shared_kv=False)
        start = len(ctx.batches)
        submit_together(sched, ctx, [make(), gen([1, 2])])
        generating = [b for b in ctx.batches[start:] if len(seqs(b)) >= 2 and all(pos > 0 for _, pos, _, _ in b)]
        fed = max(sum(token >= 10 for token, _, _, _ in batch) for batch in generating)
        assert fed >= 2, "the forced tokens went in together, not one a step"
