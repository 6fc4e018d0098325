"""`letter` against lm-evaluation-harness's log-likelihood method on a GPU, one process, one model, side by side.

The model is made from a config (SmolLM2-135M's shape by default; random weights: throughput does not depend on
them), so nothing is downloaded. Methods, each timed over the same questions after a warm-up:

* ``lm-eval hf``: lm-evaluation-harness's own ``HFLM.loglikelihood`` on (context, " " + choice) for every choice
  (its ``arc_challenge`` prompt), at its batch sizes;
* ``letter``: this project's ``letter`` mode, the question and lettered options through the chat template, one
  pass per question reading the letters' probabilities: the prefix every prompt shares is computed once per call,
  the questions' own tokens in padded batches, shortest first, the vocabulary head only at the last position
  (the algorithm of ``tutor.models.transformers.TransformersModel.choose``, here with tensors on the device;
  ``tests/test_parity.py`` checks it gives our model's numbers);
* ``letter_raw``: the same on raw text ("Question: ... Answer:").

It prints questions per second, the ratio to lm-eval at batch 8 (the CPU figure in the README is 2.01x for
``letter``), and the tokens each method runs per question. Everything it needs beyond torch and transformers
comes from an assets folder made here beforehand with ``--prepare``::

    python scripts/gpu_letter_vs_lmeval.py --prepare .whl/gpu     # here: wheels, tokenizer, ARC file (~12 MiB)
    python scripts/gpu_letter_vs_lmeval.py --assets .whl/gpu --out $OUT/gpu.json   # on the GPU machine

Without assets it still runs: synthetic ARC-shaped questions, a small tokenizer trained in-process, and the
lm-eval rows are skipped unless lm_eval is importable. ``--tiny`` makes a 2-layer model (a CPU check).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Pure-Python wheels lm-eval's HFLM needs beyond torch, transformers, accelerate and their own dependencies.
WHEELS = (
    "lm-eval==0.4.13",
    "requests==2.34.2",
    "urllib3==2.8.0",
    "idna==3.20",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "config.json")
SMOLLM2_135M = {  # the embedded model's shape (its config.json, less names)
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}
TINY = {**SMOLLM2_135M, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2}  # fmt: skip
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n'"
    " }}{% endif %}"
)


# ---- assets ------------------------------------------------------------------------------------------


def prepare(folder: Path) -> None:
    """Download the wheels (pip, no dependencies) and copy the embedded tokenizer and the ARC file into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    # Pure-Python wheels only (py3-none-any), whatever this machine's Python: the GPU machine's may differ.
    pure = ["--only-binary=:all:", "--platform", "any", "--implementation", "py", "--python-version", "3.10"]
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", *pure, "-d", str(folder / "wheels")]
    subprocess.run([*pip, *WHEELS], check=True)
    sys.path.insert(0, str(ROOT))
    from tutor.models.embedded import hf_checkpoint

    checkpoint = Path(hf_checkpoint())
    (folder / "tokenizer").mkdir(exist_ok=True)
    for name in TOKENIZER_FILES:
        if (checkpoint / name).is_file():
            shutil.copy(checkpoint / name, folder / "tokenizer" / name)
    arc = ROOT.parent / "shared" / "data" / "arc" / "arc_challenge_validation.jsonl"
    if arc.is_file():
        shutil.copy(arc, folder / "arc_challenge_validation.jsonl")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"{folder}: {size / 2**20:.1f} MiB; carry it and pass --assets {folder}")


def use_wheels(folder: Path, tmp: Path) -> None:
    """Make the wheels in ``folder`` importable (unpacked into ``tmp``), for packages not installed already."""
    for wheel in sorted(folder.glob("*.whl")):
        top = wheel.name.split("-")[0].lower().replace("-", "_")
        module = {"lm_eval": "lm_eval", "charset_normalizer": "charset_normalizer"}.get(top, top)
        try:
            __import__(module)
            continue
        except ImportError:
            pass
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp / "site")
    sys.path.insert(0, str(tmp / "site"))


# ---- model, tokenizer, questions -------------------------------------------------------------------------


def make_tokenizer(assets: Path | None, texts: list[str]) -> Any:
    """The embedded model's tokenizer from the assets, else a byte-level BPE trained here on the questions."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if assets is not None and (assets / "tokenizer" / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(str(assets / "tokenizer"))
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    # Letters follow "Answer:" with a space in letter_raw: enough of them that " A".." E" become single tokens.
    tok.train_from_iterator([*texts, *[" A B C D E"] * 100], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>")  # fmt: skip
    fast.chat_template = CHATML
    return fast


def make_model(shape: dict[str, Any], device: str, dtype: str) -> Any:
    """A Llama model of ``shape`` with seeded random weights, on ``device``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**shape)
    model = LlamaForCausalLM(config).to(device=device, dtype=getattr(torch, dtype))
    return model.eval()


# The project's question type, renderers and ARC reader, copied so that this script needs nothing of the project's
# dependencies (pydantic...) on the GPU machine; tests/test_parity.py checks they match benchmarks.tasks exactly.


@dataclass(frozen=True)
class MCQuestion:
    """A multiple-choice question (benchmarks.tasks.common.MCQuestion's fields)."""

    id: str
    question: str
    choices: tuple[str, ...]
    gold: tuple[int, ...]
    context: str

    @property
    def letters(self) -> list[str]:
        """A, B, C..."""
        return list(string.ascii_uppercase[: len(self.choices)])


def render_mc(q: MCQuestion) -> str:
    """benchmarks.tasks.common.render_mc: the chat prompt of ``letter``."""
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(q.letters, q.choices, strict=True))
    allowed = ", ".join(q.letters[:-1]) + f" or {q.letters[-1]}"
    return f"{q.question}\n\n{options}\n\nAnswer with the letter of the correct option ({allowed})."


def render_mc_raw(q: MCQuestion) -> str:
    """benchmarks.tasks.common.render_mc_raw: the raw prompt of ``letter_raw``."""
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(q.letters, q.choices, strict=True))
    return f"Question: {q.question}\n{options}\nAnswer:"


def read_arc(path: Path) -> list[MCQuestion]:
    """ARC rows (hub schema, labels A-D or 1-4) as questions, with lm-eval's arc_challenge context."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        labels = [str(x) for x in row["choices"]["label"]]
        labels = [string.ascii_uppercase[int(x) - 1] if x.isdigit() else x for x in labels]
        key = str(row["answerKey"])
        key = string.ascii_uppercase[int(key) - 1] if key.isdigit() else key
        question = str(row["question"])
        out.append(MCQuestion(str(row["id"]), question, tuple(row["choices"]["text"]), (labels.index(key),),
                              f"Question: {question}\nAnswer:"))  # fmt: skip
    return out


def load_questions(assets: Path | None, data: Path | None, n: int) -> list[MCQuestion]:
    """ARC-Challenge questions from a file (``--data``, or the assets' copy), else synthetic ones of ARC's shape."""
    path = data or (assets / "arc_challenge_validation.jsonl" if assets else None)
    if path is not None and path.is_file():
        return read_arc(path)[:n]
    rng = random.Random(0)
    words = ["energy", "plant", "water", "heat", "rock", "cell", "light", "force", "moon", "animal", "soil", "air"]
    out = []
    for i in range(n):  # ARC validation: questions of about 22 words, four choices of about 4
        stem = " ".join(rng.choice(words) for _ in range(rng.randint(10, 40))).capitalize() + "?"
        choices = tuple(" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(4))
        out.append(MCQuestion(f"s{i}", stem, choices, (rng.randrange(4),), f"Question: {stem}\nAnswer:"))
    return out


# ---- our letter method, on the device -----------------------------------------------------------------------


def common_prefix(rows: list[list[int]]) -> int:
    """How many leading tokens every row shares, leaving each row one of its own (tutor.models.transformers's)."""
    n = min(len(r) for r in rows) - 1
    for r in rows[1:]:
        k = 0
        while k < n and r[k] == rows[0][k]:
            k += 1
        n = k
    return max(n, 0)


def letter_prompts(tok: Any, questions: list[Any], chat: bool) -> tuple[list[list[int]], list[list[int]]]:
    """Each question's prompt tokens and its letters' token ids, as ``letter`` (chat) or ``letter_raw`` asks."""
    prompts, letters = [], []
    bos = tok.bos_token_id
    adds_bos = bos is not None and tok("a", add_special_tokens=True)["input_ids"][:1] == [bos]
    for q in questions:
        if chat:
            text = tok.apply_chat_template([{"role": "user", "content": render_mc(q)}], tokenize=False,
                                           add_generation_prompt=True)  # fmt: skip
        else:
            text = render_mc_raw(q)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        prompts.append([bos, *ids] if adds_bos else ids)
        space = "" if chat else " "
        ids_of = [tok(text + space + x, add_special_tokens=False)["input_ids"][len(ids) :] for x in q.letters]
        if any(len(t) != 1 for t in ids_of):  # `letter` reads one distribution: every letter must be one token
            raise SystemExit(f"the letters after this prompt are not single tokens ({ids_of}): use another tokenizer")
        letters.append([t[0] for t in ids_of])
    return prompts, letters


def next_token_logprobs(model: Any, rows: list[list[int]], forward_batch: int, pad: int) -> list[Any]:
    """Log-probabilities of the next token after each row: shared prefix once, tails batched shortest first."""
    import torch
    from transformers import DynamicCache

    device, dtype = model.device, model.dtype
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out: list[Any] = [None] * len(rows)
    decoder = model.get_decoder()
    shared = common_prefix(rows)
    trunk = []
    if shared:
        cache = decoder(input_ids=torch.tensor([rows[0][:shared]], device=device), use_cache=True).past_key_values
        trunk = [(layer.keys, layer.values) for layer in cache.layers]
    for start in range(0, len(order), forward_batch):
        idx = order[start : start + forward_batch]
        tails = [rows[i][shared:] for i in idx]
        width, batch = max(len(t) for t in tails), len(tails)
        ids = torch.full((batch, width), pad, dtype=torch.long)
        for row, tail in enumerate(tails):
            ids[row, : len(tail)] = torch.tensor(tail, dtype=torch.long)
        allowed = torch.ones(width, shared + width, dtype=torch.bool)
        allowed[:, shared:] = torch.ones(width, width, dtype=torch.bool).tril()
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        kwargs: dict[str, Any] = {}
        if trunk:
            kwargs["past_key_values"] = DynamicCache(
                ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in trunk]
            )
        hidden = decoder(
            input_ids=ids.to(device),
            attention_mask=mask.to(device).expand(batch, 1, -1, -1),
            position_ids=torch.arange(shared, shared + width, device=device).expand(batch, -1),
            use_cache=bool(trunk),
            **kwargs,
        ).last_hidden_state
        ends = torch.tensor([len(t) - 1 for t in tails], device=device)
        last = model.get_output_embeddings()(hidden[torch.arange(batch, device=device), ends])
        for i, row in zip(idx, torch.log_softmax(last.float(), dim=-1), strict=True):
            out[i] = row
    return out


def run_letter(model: Any, tok: Any, questions: list[Any], chat: bool, call_batch: int, forward_batch: int) -> Any:
    """Our ``letter`` run: questions shortest first, ``call_batch`` per call, each call as ``choose`` computes it."""
    import torch

    prompts, letters = letter_prompts(tok, questions, chat)
    order = sorted(range(len(questions)), key=lambda i: len(prompts[i]))
    answers: list[list[float]] = [[] for _ in questions]
    with torch.inference_mode():
        for start in range(0, len(order), call_batch):
            idx = order[start : start + call_batch]
            rows = next_token_logprobs(model, [prompts[i] for i in idx], forward_batch, tok.pad_token_id)
            for i, row in zip(idx, rows, strict=True):
                answers[i] = row[torch.tensor(letters[i], device=row.device)].tolist()
    return answers


# ---- lm-evaluation-harness ------------------------------------------------------------------------------------


def run_lmeval(lm: Any, questions: list[Any]) -> list[float]:
    """lm-eval's ``loglikelihood`` requests for every (context, " " + choice), as its multiple_choice tasks make."""
    from lm_eval.api.instance import Instance

    requests = [Instance("loglikelihood", {}, (q.context, f" {c}"), i) for i, q in enumerate(questions)
                for c in q.choices]  # fmt: skip
    return [float(ll) for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)]


def timed(fn: Any, device: str) -> tuple[Any, float]:
    """``fn()`` and its wall-clock seconds, the device synchronised before and after."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def tokens_per_question(tok: Any, questions: list[Any]) -> dict[str, float]:
    """Tokens each method runs through the model per question (after the shared prefix for ``letter``)."""
    n = len(questions)
    counts = {}
    for name, chat in (("letter", True), ("letter_raw", False)):
        prompts, _ = letter_prompts(tok, questions, chat)
        counts[name] = sum(len(p) for p in prompts) / n - common_prefix(prompts)
    ctx = [len(tok(q.context, add_special_tokens=False)["input_ids"]) for q in questions]
    conts = [[len(tok(f" {c}", add_special_tokens=False)["input_ids"]) for c in q.choices] for q in questions]
    counts["lm-eval"] = sum(c * len(x) + sum(x) - len(x) for c, x in zip(ctx, conts, strict=True)) / n
    return counts


def main(argv: list[str] | None = None) -> int:
    """Time every method on the same questions; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="make the assets folder here, then stop")
    parser.add_argument("--assets", type=Path, metavar="DIR", help="a folder made by --prepare")
    parser.add_argument("--data", type=Path, help="an ARC-Challenge JSONL (default: the assets' copy)")
    parser.add_argument("--n", type=int, default=299, help="questions (default: 299, the validation file)")
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: bfloat16 on cuda)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model (a quick CPU check)")
    parser.add_argument("--lmeval-batch", type=int, nargs="+", default=[8, 64], help="lm-eval batch sizes")
    parser.add_argument("--letter-batch", type=int, nargs="+", default=[32, 256], help="questions per letter call")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method; the fastest is reported")
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.prepare)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    with tempfile.TemporaryDirectory(prefix="gpu-letter-") as tmp:
        if args.assets:
            use_wheels(args.assets / "wheels", Path(tmp))
        questions = load_questions(args.assets, args.data, args.n)
        texts = [q.question + " " + " ".join(q.choices) for q in questions]
        tok = make_tokenizer(args.assets, texts)
        model = make_model(TINY if args.tiny else SMOLLM2_135M, device, dtype)
        results = measure(model, tok, questions, args, device)
    info = {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "dtype": dtype,
        "torch": torch.__version__,
        "n": len(questions),
        "model": "tiny" if args.tiny else "SmolLM2-135M shape",
    }
    print(f"{info['device']}, {dtype}, torch {info['torch']}, {info['n']} questions, {info['model']} (random weights)")
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**info, "results": results}, indent=2) + "\n", encoding="utf-8")
    return 0


def measure(model: Any, tok: Any, questions: list[Any], args: argparse.Namespace, device: str) -> list[dict]:
    """Warm every method up on a few questions, then time each on all of them, one after another."""
    tokens = tokens_per_question(tok, questions)
    methods: list[tuple[str, str, int, Any]] = []
    try:
        from lm_eval.models.huggingface import HFLM

        for b in args.lmeval_batch:
            lm = HFLM(pretrained=model, tokenizer=tok, batch_size=b, backend="causal")
            methods.append(("lm-eval hf (loglik)", "lm-eval", b, lambda qs, lm=lm: run_lmeval(lm, qs)))
    except ImportError as exc:
        print(f"lm-eval rows skipped: lm_eval is not importable ({exc}); pass --assets DIR", file=sys.stderr)
    for b in args.letter_batch:
        for name, chat in (("letter", True), ("letter_raw", False)):
            methods.append((f"ours {name}", name, b, lambda qs, b=b, c=chat: run_letter(model, tok, qs, c, b, b // 2)))
    results = []
    for label, kind, batch, fn in methods:
        fn(questions[:16])  # warm-up: kernels, allocator, lazy imports
        # The best of --repeat runs: a run of a few seconds on a GPU also pays for each new shape's first kernels.
        runs = [timed(lambda fn=fn: fn(questions), device)[1] for _ in range(args.repeat)]
        seconds = min(runs)
        results.append({"method": label, "kind": kind, "batch": batch, "seconds": round(seconds, 4),
                        "runs": [round(r, 4) for r in runs],
                        "questions_per_second": round(len(questions) / seconds, 3),
                        "tokens_per_question": round(tokens[kind], 1)})  # fmt: skip
        print(f"done: {label} batch {batch}: {len(questions) / seconds:.1f} q/s", file=sys.stderr, flush=True)
    return results


def report(results: list[dict]) -> str:
    """Markdown: q/s, the ratio to lm-eval at its first batch size, tokens per question."""
    ref = next((r for r in results if r["kind"] == "lm-eval"), None)
    head = f"| method | batch | questions/s | vs lm-eval (batch {ref['batch'] if ref else '-'}) | tokens/question |"
    lines = [head, "|---|---|---|---|---|"]
    for r in results:
        ratio = f"{r['questions_per_second'] / ref['questions_per_second']:.2f}x" if ref else "-"
        lines.append(f"| {r['method']} | {r['batch']} | {r['questions_per_second']:.1f} | {ratio} "
                     f"| {r['tokens_per_question']} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
