"""Would batching pay on the transformers backend? Free greedy decoding, B prompts in one ``generate`` vs one each.

    .venv/bin/python scripts/hf_batch.py [--batch 1,2,4] [--tokens 64] [--threads 2]

The transformers backend answers one request at a time (a lock); llama.cpp's batches them. This measures what a
batched ``generate`` (left padding, one KV cache, every row the same length) would give on this machine, before
anyone builds per-row grammar masks and joining/leaving rows for it: aggregate tokens per second at each batch
size against batch 1, in one process, alternating the sizes, and how many rows decode exactly what their prompt
decodes alone (left padding changes the float results). A measurement script, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

PROMPTS = [
    "Explain overfitting in three sentences.",
    "What is gradient descent?",
    "Write a short poem about the sea.",
    "What does dropout do?",
    "Describe k-means clustering.",
    "What is a learning rate?",
    "Explain cross-validation.",
    "What is a decision tree?",
]


def main() -> None:
    """Print aggregate tok/s per batch size and the ratio to batch 1."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", default="1,2,4")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import torch

    from tutor.models import load_model

    torch.set_num_threads(args.threads)
    model = load_model("default", backend="transformers")
    hf, tok = model.hf, model.tokenizer
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    sizes = [int(b) for b in args.batch.split(",")]
    rates: dict[int, list[float]] = {b: [] for b in sizes}
    texts_of: dict[int, list[list[int]]] = {}

    def run(b: int) -> float:
        texts = [model.render([{"role": "user", "content": q}]) for q in PROMPTS[:b]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        start = time.perf_counter()
        with torch.inference_mode():
            settings = {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "do_sample": False}
            out = hf.generate(**enc, **settings, pad_token_id=tok.pad_token_id)
        seconds = time.perf_counter() - start
        texts_of[b] = out[:, enc["input_ids"].shape[1] :].tolist()
        return (out.shape[1] - enc["input_ids"].shape[1]) * b / seconds

    run(1)
    alone = []
    for i in range(max(sizes)):  # each prompt on its own: what a row of a batch should reproduce
        enc = tok(
            [model.render([{"role": "user", "content": PROMPTS[i]}])], return_tensors="pt", add_special_tokens=False
        )
        with torch.inference_mode():
            settings = {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "do_sample": False}
            alone.append(
                hf.generate(**enc, **settings, pad_token_id=tok.pad_token_id)[0, enc["input_ids"].shape[1] :].tolist()
            )
    for r in range(args.repeats):
        for b in sizes if r % 2 == 0 else sizes[::-1]:
            rates[b].append(run(b))
    # The same through the backend: B threads calling Model.generate at once (the backend batches them) vs one.
    from concurrent.futures import ThreadPoolExecutor

    # short enough to close within --tokens (a cut-off JSON document is an error, not a text)
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 120}}, "required": ["answer"]}
    api: dict[tuple[int, str], list[float]] = {}
    for r in range(args.repeats):
        for b in sizes if r % 2 == 0 else sizes[::-1]:
            for kind, constraint in (("free", None), ("JSON", schema)):
                calls = [lambda q=q, c=constraint: model.generate(q, c, max_tokens=args.tokens) for q in PROMPTS[:b]]
                start = time.perf_counter()
                with ThreadPoolExecutor(b) as pool:
                    texts = list(pool.map(lambda call: call(), calls))
                count = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
                api.setdefault((b, kind), []).append(count / (time.perf_counter() - start))
    one = statistics.median(rates[sizes[0]])
    print(f"transformers, float32, {args.threads} threads, {args.tokens} new tokens per row, median of {args.repeats}")
    print("| batch | tok/s (all rows) | x batch 1 | greedy rows identical to the prompt alone |\n|---|---|---|---|")
    for b in sizes:
        m = statistics.median(rates[b])
        same = sum(row == alone[i] for i, row in enumerate(texts_of[b]))
        print(f"| {b} | {m:.1f} | {m / one:.2f} | {same}/{b} |")
    print("\nthrough the backend (B threads calling Model.generate at once; tokens counted from the texts)")
    print("| batch | free tok/s | x batch 1 | JSON tok/s | x batch 1 |\n|---|---|---|---|---|")
    for b in sizes:
        free, js = statistics.median(api[(b, "free")]), statistics.median(api[(b, "JSON")])
        f1, j1 = statistics.median(api[(sizes[0], "free")]), statistics.median(api[(sizes[0], "JSON")])
        print(f"| {b} | {free:.1f} | {free / f1:.2f} | {js:.1f} | {js / j1:.2f} |")


if __name__ == "__main__":
    main()
