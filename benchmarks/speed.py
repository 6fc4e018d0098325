"""Constrained vs unconstrained decoding speed, side by side in one process, as ratios.

    .venv/bin/python -m benchmarks.speed [--tokens 128] [--repeats 3] [--backends llamacpp,transformers]
    .venv/bin/python -m benchmarks.speed --batch 1,2,4,8 [--threads 2] [--modes deterministic,fast]

``--batch``: llama.cpp's continuous batching. For each batch size B, B threads decode at once (each its own
request, as B students would), free and under the JSON schema; aggregate tokens per second over the wall time
of the B requests (prompts included), and the ratios against batch 1 and constrained/free, all from one run;
and prompt evaluation alone (B log-likelihood requests of ~350 fresh tokens at once: what a grounded quiz's
open-book check costs), whose rate batching cannot raise much on a CPU, where it is already a matrix product.
``--modes``: ``deterministic`` (the default model) and/or ``fast`` (``deterministic=False``: one unified cache).
Beside them, the bound: a bare greedy loop of B sequences on the same llama.cpp context (no scheduler, threads,
grammar or detokenizing), so "x batch 1" is read against what llama.cpp itself gives on this machine in the same
run, and free/bare is what our loop costs. The kinds of run take turns (see :func:`interleaved`).

For each backend the same prompt is decoded for the same number of tokens: free text, then under a
JSON schema with one free string field (an essay the model keeps writing past the budget: the token
counts of both runs are printed, and rates are per token actually decoded), once per grammar engine
the backend offers (:mod:`tutor.models.grammar`). Each engine's row runs a model loaded with that
engine, and is labelled with the engine the model's grammar reports, so a row times what it names.
The ratio constrained/unconstrained tokens per second is the cost of the constraint. For llama.cpp,
the baseline the design replaced is measured in the same run: plain outlines (``outlines.from_llamacpp``
and its logits processor inside ``Llama.__call__``), against plain ``Llama.__call__``. Nothing here is
a test: numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

BATCH_CTX = 1024  # cells per sequence in the --batch models: four models of nine streams stay under 1 GB
PROMPT = "Write a long, detailed essay about how neural networks learn, with many examples."
LONG_STRING = {
    "type": "object",
    "properties": {"essay": {"type": "string"}},
    "required": ["essay"],
}
# For llguidance: the essay cannot close before the budget ends, so both runs decode exactly --tokens tokens.
# (llguidance handles the bound lazily; outlines_core would compile thousands of states for it.)
LONG_STRING_MIN = {
    "type": "object",
    "properties": {"essay": {"type": "string", "minLength": 2000}},
    "required": ["essay"],
}


def best_rate(run: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Tokens per second (median of ``repeats`` timed runs, after one warm-up) and tokens per run."""
    run()
    rates, counts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        rates.append(n / (time.perf_counter() - start))
        counts.append(n)
    return statistics.median(rates), min(counts)


def ours(model, constraint, tokens: int) -> Callable[[], int]:
    """One decode through our backend's loop, bypassing the final check (the text is cut off on purpose)."""
    from tutor.models.base import Sampling, to_messages
    from tutor.models.constraints import to_constraint

    c = to_constraint(constraint)
    messages = to_messages(PROMPT)

    def run() -> int:
        text = "".join(model._stream(messages, c, Sampling(max_tokens=tokens)))
        return len(model.tokenize(text))

    return run


def outlines_llamacpp(llama, constrained: bool, tokens: int) -> Callable[[], int]:
    """The baseline: llama-cpp-python's own sampler loop, with outlines' logits processor when constrained."""
    import outlines
    from outlines.types import JsonSchema

    from tutor.models.constraints import WHITESPACE_PATTERN

    om = outlines.from_llamacpp(llama, chat_mode=False)
    gen = (
        outlines.Generator(om, JsonSchema(json.dumps(LONG_STRING), whitespace_pattern=WHITESPACE_PATTERN))
        if constrained
        else None
    )
    prompt = PROMPT

    def run() -> int:
        if gen is not None:
            text = gen(prompt, max_tokens=tokens, temperature=0.0)
        else:
            text = llama(prompt, max_tokens=tokens, temperature=0.0)["choices"][0]["text"]
        llama.reset()
        return len(llama.tokenize(text.encode(), add_bos=False, special=True))

    return run


def measure(backend: str, tokens: int, repeats: int, threads: int | None = None) -> list[dict]:
    """Rows of (what, free tok/s, constrained tok/s) for one backend: one per grammar engine, then baselines."""
    from tutor.models import ModelError, load_model

    model = load_model("default", backend=backend, n_threads=threads)
    free = best_rate(ours(model, None, tokens), repeats)
    rows = []
    for engine in model.grammar.offered:
        try:
            timed = (
                model
                if engine == model.grammar.engine
                else load_model(backend=backend, grammar_backend=engine, n_threads=threads)
            )
        except ModelError as exc:  # the engine's package is not installed here: say so, keep going
            print(f"  {backend} {engine}: skipped ({exc})")
            continue
        schema = LONG_STRING_MIN if engine == "llguidance" else LONG_STRING
        constrained = best_rate(ours(timed, schema, tokens), repeats)
        assert timed.grammar.compiled, f"the {engine} row decoded without compiling a grammar"
        path = f"tutor+{timed.grammar.engine}"  # the engine the model decoded with, not the one asked for
        rows.append({"backend": backend, "path": path, "free": free, "constrained": constrained})
        if timed is not model:
            timed.close()
    model.close()
    if backend == "llamacpp":
        rows.append({"backend": backend, **plain_outlines(tokens, repeats, threads)})
    return rows


def plain_outlines(tokens: int, repeats: int, threads: int | None) -> dict:
    """The baseline row, on a plain Llama of its own (our model decodes in a context llama-cpp-python never sees)."""
    import os

    import llama_cpp

    from tutor.models import embedded

    n = threads or os.cpu_count() or 1
    plain = llama_cpp.Llama(str(embedded.gguf_path()), n_ctx=2048, n_threads=n, n_threads_batch=n, verbose=False)
    free = best_rate(outlines_llamacpp(plain, False, tokens), repeats)
    constrained = best_rate(outlines_llamacpp(plain, True, tokens), repeats)
    plain.close()
    return {"path": "plain outlines", "free": free, "constrained": constrained}


def catch_up(tokens: int, repeats: int, threads: int | None) -> dict[str, tuple[float, int]]:
    """One request at a time: our loop on the default model against plain outlines, the runs alternated."""
    import os

    import llama_cpp

    from tutor.models import embedded, load_model

    n = threads or os.cpu_count() or 1
    model = load_model("default", n_threads=threads)
    plain = llama_cpp.Llama(str(embedded.gguf_path()), n_ctx=2048, n_threads=n, n_threads_batch=n, verbose=False)
    try:
        return interleaved(
            {
                "ours free": ours(model, None, tokens),
                "ours constrained": ours(model, LONG_STRING_MIN, tokens),
                "plain outlines free": outlines_llamacpp(plain, False, tokens),
                "plain outlines constrained": outlines_llamacpp(plain, True, tokens),
            },
            repeats,
        )
    finally:
        model.close()
        plain.close()


def concurrent(model, constraint, tokens: int, batch: int) -> Callable[[], int]:
    """``batch`` requests decoded at once through the model (threads, as students would); tokens decoded."""
    from concurrent.futures import ThreadPoolExecutor

    runs = [ours(model, constraint, tokens) for _ in range(batch)]

    def together() -> int:
        with ThreadPoolExecutor(batch) as pool:
            return sum(pool.map(lambda run: run(), runs))

    return together


def bare(model, tokens: int, batch: int) -> Callable[[], int]:
    """The bound for ``concurrent``: a bare greedy loop on the model's own llama.cpp context (same KV layout, threads).

    One ``llama_decode`` per step with one token for each of ``batch`` sequences (ids 0 to batch - 1), argmax of
    each row, nothing else (the issue's premise: 1.77x at 4 sequences, measured once this way). Like the scheduler it
    keeps a prompt's cells for the next run and feeds only its last token again; it runs while the scheduler is idle
    and tells the scheduler's slots what their cells hold after it, so the scheduler reuses only what is there.
    """
    import numpy as np

    from tutor.models.base import to_messages

    scheduler, context = model.scheduler, model.scheduler.context
    prompt = model.prompt_tokens(model.render(to_messages(PROMPT)))
    n = len(prompt)

    def run() -> int:
        assert scheduler.running == 0 and scheduler.waiting == 0, "the bare loop needs the model idle"
        last = []
        for seq in range(batch):
            cached = scheduler.slots[seq].tokens[: n - 1] == prompt[: n - 1]
            start = n - 1 if cached else 0
            context.seq_rm(seq, start)
            for begin in range(start, n, scheduler.n_batch):
                chunk = prompt[begin : begin + scheduler.n_batch]
                context.decode([(t, begin + i, seq, begin + i == n - 1) for i, t in enumerate(chunk)])
            last.append(int(np.argmax(context.logits(len(chunk) - 1))))
        for step in range(tokens - 1):
            context.decode([(token, n + step, seq, True) for seq, token in enumerate(last)])
            last = [int(np.argmax(context.logits(i))) for i in range(batch)]
        for seq in range(batch):  # keep the prompt's cells, as the scheduler would, and record them in its slot
            context.seq_rm(seq, n)
            scheduler.slots[seq].tokens = list(prompt)
        return batch * tokens

    return run


def interleaved(runs: dict[str, Callable[[], int]], repeats: int) -> dict[str, tuple[float, int]]:
    """Each run's tokens per second (median of ``repeats``) and tokens per run, the runs alternated.

    This machine's speed drifts by 15-25% over a minute (a VM's neighbours), so runs compared in a ratio take
    turns: a slow minute slows all of them, not the one that happened to run then.
    """
    for run in runs.values():
        run()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, list[int]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            counts[name].append(run())
            rates[name].append(counts[name][-1] / (time.perf_counter() - start))
    return {name: (statistics.median(rates[name]), min(counts[name])) for name in runs}


PASSAGE = " ".join(f"Overfitting is when a model learns noise number {i} of its training data." for i in range(20))


def prompt_eval(model, batch: int) -> Callable[[], int]:
    """``batch`` log-likelihood requests at once (~350 prompt tokens each); prompt tokens evaluated.

    Every request's prompt starts with a number never used before, so no run finds its prefix in the KV cache:
    this is the work a grounded quiz's open-book check does (a passage read, a few answer tokens scored).
    """
    from concurrent.futures import ThreadPoolExecutor
    from itertools import count

    fresh = count()
    size = len(model.tokenize(f"0 {PASSAGE}\nAnswer:")) + len(model.tokenize(" noise"))

    def one() -> int:
        model.loglikelihood([(f"{next(fresh)} {PASSAGE}\nAnswer:", " noise")])
        return size

    def together() -> int:
        with ThreadPoolExecutor(batch) as pool:
            return sum(pool.map(lambda _: one(), range(batch)))

    return together


def measure_batches(sizes: list[int], tokens: int, repeats: int, threads: int | None, mode: str) -> list[dict]:
    """Rows of (batch size, free, constrained, bare loop, prompt) aggregate rates, one llama.cpp model per kind.

    Each kind decodes on a model of its own (same settings), so none finds its prompt's cells evicted by another
    kind's run: with one model the kinds took turns in its few sequences, and whichever ran after the bare loop
    computed its prompts again while the others reused theirs.
    """
    from tutor.models import load_model

    def model():
        return load_model(
            "default", n_threads=threads, max_seqs=max(sizes), n_ctx=BATCH_CTX, deterministic=mode == "deterministic"
        )

    models = {kind: model() for kind in ("free", "bare", "constrained", "prompt")}
    rows = []
    for size in sizes:
        rates = interleaved(
            {
                "free": concurrent(models["free"], None, tokens, size),
                "bare": bare(models["bare"], tokens, size),
                "constrained": concurrent(models["constrained"], LONG_STRING_MIN, tokens, size),
                "prompt": prompt_eval(models["prompt"], size),
            },
            repeats,
        )
        rows.append({"mode": mode, "batch": size, **rates})
        print(
            f"  {mode} batch {size}: " + ", ".join(f"{name} {rate:.1f} tok/s" for name, (rate, _) in rates.items()),
            flush=True,
        )
    for each in models.values():
        each.close()
    return rows


def print_batches(rows: list[dict], tokens: int, repeats: int) -> None:
    """The batch table: aggregate rates, ratios against batch 1 of the same mode, constrained/free, ours/bare."""
    print(
        f"\n{tokens} tokens per request, median of {repeats} (the four kinds of run alternated); x1 = against batch 1"
        " of the same mode and kind; bare = a bare greedy loop on the same llama.cpp context (the bound)\n"
    )
    kinds = ("free", "constrained", "bare", "prompt")
    header = " | ".join(f"{kind} tok/s | x1" for kind in kinds)
    print(f"| mode | batch | {header} | constrained/free | free/bare |")
    print("|---|---|" + "---|---|" * len(kinds) + "---|---|")
    for r in rows:
        one = next((o for o in rows if o["mode"] == r["mode"] and o["batch"] == 1), r)
        cells = [f"{r[kind][0]:.1f} | {r[kind][0] / one[kind][0]:.2f}" for kind in kinds]
        ratios = f"{r['constrained'][0] / r['free'][0]:.2f} | {r['free'][0] / r['bare'][0]:.2f}"
        print(f"| {r['mode']} | {r['batch']} | " + " | ".join(cells) + f" | {ratios} |")


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="llamacpp,transformers")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every core)")
    parser.add_argument("--batch", default=None, help="batch sizes for llama.cpp's continuous batching, e.g. 1,2,4,8")
    parser.add_argument("--modes", default="deterministic", help="with --batch: deterministic and/or fast")
    args = parser.parse_args()
    if args.batch:
        sizes = [int(b) for b in args.batch.split(",")]
        batch_rows = []
        for mode in args.modes.split(","):
            batch_rows += measure_batches(sizes, args.tokens, args.repeats, args.threads, mode)
        print_batches(batch_rows, args.tokens, args.repeats)
        rates = catch_up(args.tokens, args.repeats, args.threads)
        print("\none request, ours (the default model) and plain outlines (Llama.__call__ + logits processor), "
              f"alternated, median of {args.repeats}:")  # fmt: skip
        for name, (rate, count) in rates.items():
            print(f"  {name}: {rate:.1f} tok/s ({count} tokens)")
        return
    rows = []
    for backend in args.backends.split(","):
        rows += measure(backend, args.tokens, args.repeats, args.threads)
    print(f"\n{args.tokens} tokens, median of {args.repeats}, same prompt; ratio = constrained / free\n")
    print("| backend | path | free tok/s | constrained tok/s | ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        (free, n_free), (con, n_con) = r["free"], r["constrained"]
        print(
            f"| {r['backend']} | {r['path']} | {free:.1f} ({n_free} tok) | {con:.1f} ({n_con} tok) | {con / free:.2f} |"
        )


if __name__ == "__main__":
    main()
