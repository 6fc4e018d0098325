"""Constrained vs unconstrained decoding speed, side by side in one process, as ratios.

    .venv/bin/python -m benchmarks.speed [--tokens 128] [--repeats 3] [--backends llamacpp,transformers]

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


def measure(backend: str, tokens: int, repeats: int) -> list[dict]:
    """Rows of (what, free tok/s, constrained tok/s) for one backend: one per grammar engine, then baselines."""
    from tutor.models import ModelError, load_model

    model = load_model("default", backend=backend)
    free = best_rate(ours(model, None, tokens), repeats)
    rows = []
    for engine in model.grammar.offered:
        try:
            timed = model if engine == model.grammar.engine else load_model(backend=backend, grammar_backend=engine)
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
    if backend == "llamacpp":
        free = best_rate(outlines_llamacpp(model.llama, False, tokens), repeats)
        constrained = best_rate(outlines_llamacpp(model.llama, True, tokens), repeats)
        rows.append({"backend": backend, "path": "plain outlines", "free": free, "constrained": constrained})
    model.close()
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="llamacpp,transformers")
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        rows += measure(backend, args.tokens, args.repeats)
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
