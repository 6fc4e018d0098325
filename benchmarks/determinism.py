"""How often greedy text depends on what else ran: llama.cpp's deterministic mode against its fast mode.

    .venv/bin/python -m benchmarks.determinism [--prompts 12] [--tokens 64] [--threads 1] [--modes deterministic,fast]

Each prompt is first decoded alone on a freshly loaded model (an empty cache): the reference. Then, on one model
per mode, the same prompts are decoded (a) one after another, each after the others (their cells cached), (b) four
at a time from threads, in one batch, and (c) as a second turn after the model's own first answer (whose cells were
computed one token at a time while it was written), against that second turn on a fresh model. Printed: how many
outputs equal the reference, and where the first ones differ. Counts, not timings: no lock needed.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

PROMPTS = [
    "Explain overfitting in three sentences.",
    "What is gradient descent?",
    "Why do we split data into training and test sets?",
    "What does a learning rate control?",
    "Explain dropout in a neural network.",
    "What is the difference between classification and regression?",
    "How does k-means clustering work?",
    "What is a confusion matrix?",
    "Why is feature scaling useful?",
    "What is cross-validation?",
    "Explain the bias-variance trade-off.",
    "What does the softmax function do?",
]
FOLLOW_UP = "Give one example."


def second_turn(prompt: str, answer: str) -> list[dict[str, str]]:
    """The chat of a follow-up question after ``answer``."""
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": FOLLOW_UP},
    ]


def first_difference(a: str, b: str) -> int | None:
    """Index of the first differing character, or None when equal."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def measure(mode: str, prompts: list[str], tokens: int, threads: int) -> dict[str, list[int | None]]:
    """First differences from the fresh-model reference, per scenario."""
    from tutor.models import load_model

    options = {"n_threads": threads, "deterministic": mode == "deterministic", "self_check": False, "n_ctx": 2048}

    def fresh(messages) -> str:
        with load_model("default", **options) as model:
            return model.generate(messages, max_tokens=tokens)

    reference = [fresh(p) for p in prompts]
    with load_model("default", **options) as model:
        after = [model.generate(p, max_tokens=tokens) for p in prompts]
        with ThreadPoolExecutor(4) as pool:
            beside = list(pool.map(lambda p: model.generate(p, max_tokens=tokens), prompts))
        turns = [model.generate(second_turn(p, a), max_tokens=tokens) for p, a in zip(prompts, after, strict=True)]
    fresh_turns = [fresh(second_turn(p, a)) for p, a in zip(prompts, after, strict=True)]
    return {
        "after other prompts": [first_difference(r, a) for r, a in zip(reference, after, strict=True)],
        "beside others (4 threads)": [first_difference(r, b) for r, b in zip(reference, beside, strict=True)],
        "second turn vs fresh model": [first_difference(f, t) for f, t in zip(fresh_turns, turns, strict=True)],
    }


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", default="deterministic,fast")
    args = parser.parse_args()
    prompts = PROMPTS[: args.prompts]
    print(f"\n{len(prompts)} prompts, {args.tokens} greedy tokens; identical = same text as the fresh reference\n")
    print("| mode | scenario | identical | first difference at character |")
    print("|---|---|---|---|")
    for mode in args.modes.split(","):
        for scenario, diffs in measure(mode, prompts, args.tokens, args.threads).items():
            same = sum(d is None for d in diffs)
            where = ", ".join(str(d) for d in diffs if d is not None) or "-"
            print(f"| {mode} | {scenario} | {same}/{len(diffs)} | {where} |", flush=True)


if __name__ == "__main__":
    main()
