"""Generating sequences fed in lockstep (today) vs each feeding every pending token at once, side by side.

    .venv/bin/python scripts/lockstep_ab.py [--batch 2,4,8] [--repeats 3] [--tokens 200] [--threads 2]

With a KV stream per sequence (the deterministic default), llama.cpp's ``split_equal`` takes the same number of
tokens from every sequence of a micro-batch, so a sequence feeding its choice plus tokens its grammar forced (a
JSON key) beside sequences feeding one token costs a second graph computation. The scheduler now feeds each
generating sequence as many tokens as every one of them has (``Scheduler._lockstep``). This runs B requests at
once under a JSON schema with many short fields (many forced keys) both ways on one model, the two settings
alternated, and prints aggregate tokens per second, the ratio, and whether the texts are the same. A measurement
script, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCHEMA = {
    "type": "array",
    "minItems": 6,
    "maxItems": 6,
    "items": {
        "type": "object",
        "properties": {
            "term": {"type": "string", "maxLength": 24},
            "kind": {"type": "string", "maxLength": 16},
            "definition": {"type": "string", "maxLength": 60},
            "example": {"type": "string", "maxLength": 40},
        },
        "required": ["term", "kind", "definition", "example"],
        "additionalProperties": False,
    },
}


def main() -> None:
    """Run both settings at each batch size and print one line each."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", default="2,4,8")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    sizes = [int(x) for x in args.batch.split(",")]

    from tutor.models import batching, load_model
    from tutor.models.base import Sampling, to_messages
    from tutor.models.constraints import to_constraint

    model = load_model("default", n_threads=args.threads, max_seqs=max(sizes), n_ctx=1024)
    constraint = to_constraint(SCHEMA)
    lockstep = batching.Scheduler._lockstep
    settings = {"lockstep": lockstep, "all at once": lambda self, running: self.n_batch}

    def run(batch: int) -> tuple[int, list[str]]:
        def one(i: int) -> str:
            prompt = f"List six machine-learning terms about topic {i} as JSON."
            return "".join(model._stream(to_messages(prompt), constraint, Sampling(max_tokens=args.tokens)))

        with ThreadPoolExecutor(batch) as pool:
            texts = list(pool.map(one, range(batch)))
        return sum(len(model.tokenize(t)) for t in texts), texts

    try:
        for size in sizes:
            rates: dict[str, list[float]] = {name: [] for name in settings}
            texts: dict[str, list[str]] = {}
            for name, plan in settings.items():  # warm-up, and the texts to compare
                batching.Scheduler._lockstep = plan
                texts[name] = run(size)[1]
            for r in range(args.repeats):
                for name in list(settings)[:: 1 if r % 2 == 0 else -1]:  # alternated: neither always runs first
                    batching.Scheduler._lockstep = settings[name]
                    start = time.perf_counter()
                    n, _ = run(size)
                    rates[name].append(n / (time.perf_counter() - start))
            a, b = (statistics.median(rates[name]) for name in settings)
            same = texts["lockstep"] == texts["all at once"]
            print(f"batch {size}: lockstep {a:.1f} tok/s, all at once {b:.1f} tok/s, {a / b:.2f}x; same texts: {same}")
    finally:
        batching.Scheduler._lockstep = lockstep
        model.close()


if __name__ == "__main__":
    main()
