"""Parity with lm-evaluation-harness on ARC-Challenge: same model, same questions, same method.

Runs lm-evaluation-harness's ``hf`` model (``lm_eval --model hf``: the ``HFLM`` class, called here
in-process so that its timing excludes the Python start-up and model load, as ours does) with the
local task ``benchmarks/lmeval/arc_challenge_local.yaml`` over the ``--data`` file, then our
``loglik``, ``letter`` and ``letter_raw`` modes on the same checkpoint (transformers backend: exact parity) and on
the same model's GGUF (llama.cpp), and prints acc, acc_norm, questions per second, and the
throughput ratio against lm-evaluation-harness.

    python -m benchmarks.parity_lmeval --data ../shared/data/arc/arc_challenge_validation.jsonl

Needs ``pip install lm-eval==0.4.13``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASK_YAML = Path(__file__).resolve().parent / "lmeval" / "arc_challenge_local.yaml"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "arc" / "arc_challenge_validation.jsonl"
OUR_MODES = ("loglik", "letter", "letter_raw")


def task_dir(data: Path, where: Path) -> Path:
    """A copy of the task YAML whose data file is ``data`` (lm-eval reads YAML tasks from a directory)."""
    text = TASK_YAML.read_text(encoding="utf-8")
    text = re.sub(r"(\n    validation: ).*", lambda m: m.group(1) + json.dumps(str(data.resolve())), text)
    where.mkdir(parents=True, exist_ok=True)
    (where / TASK_YAML.name).write_text(text, encoding="utf-8")
    return where


def run_lmeval(checkpoint: Path, data: Path, limit: int | None, batch_size: int, tmp: Path) -> dict[str, Any]:
    """lm-evaluation-harness's HFLM on the local task: acc, acc_norm, per-question log-likelihoods, time."""
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise SystemExit(f"this script needs lm-evaluation-harness: `pip install lm-eval==0.4.13` ({exc})") from exc

    lm = HFLM(pretrained=str(checkpoint), backend="causal", batch_size=batch_size, device="cpu", dtype="float32")
    manager = TaskManager(include_path=str(task_dir(data, tmp / "lmeval_tasks")))
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=["arc_challenge_local"], task_manager=manager, limit=limit, log_samples=True,
        bootstrap_iters=0, random_seed=0, numpy_random_seed=0, torch_random_seed=0,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    metrics = out["results"]["arc_challenge_local"]
    samples = out["samples"]["arc_challenge_local"]
    lls = {s["doc"]["id"]: [float(r[0]) for r in s["filtered_resps"]] for s in samples}
    return {
        "method": "lm-eval hf (loglik)",
        "mode": "lm-eval",
        "acc": metrics["acc,none"],
        "acc_norm": metrics["acc_norm,none"],
        "n": len(samples),
        "seconds": seconds,
        "lls": lls,
    }


def run_ours(model: Any, mode: str, data: Path, limit: int | None, tmp: Path, label: str) -> dict[str, Any]:
    """Our run (writing its run directory, as `ta bench run` does), timed end to end."""
    from benchmarks.run import RunSpec, read_predictions, run

    out = tmp / f"{label}-{mode}".replace(" ", "_")
    start = time.perf_counter()
    spec = RunSpec("arc_challenge", mode, data=data, limit=limit, out=out)
    summary = run(model, spec, progress=False)
    seconds = time.perf_counter() - start
    rows = read_predictions(out / "predictions.jsonl")
    return {
        "method": f"ours {label} ({mode})",
        "mode": mode,
        "acc": summary["accuracy"],
        "acc_norm": summary.get("accuracy_norm"),
        "n": summary["n"],
        "seconds": seconds,
        "parse_failures": summary["parse_failures"],
        "lls": {r["id"]: list(r["scores"].values()) for r in rows} if mode == "loglik" else None,
    }


def tokens_read(model: Any, questions: list[Any]) -> dict[str, float]:
    """Tokens each method runs through the model per question, on average: the work behind the ratios.

    lm-eval runs context + choice once per choice (all but the last token, each through the
    vocabulary head too); ``loglik`` runs the context once plus each choice; ``letter`` and
    ``letter_raw`` run the prompt once, less the prefix every prompt shares (computed once).
    """
    from benchmarks.tasks.common import render_mc, render_mc_raw
    from tutor.models.base import split_continuation, to_messages
    from tutor.models.transformers import common_prefix

    def per_choice(q: Any) -> list[tuple[list[int], list[int]]]:
        return [split_continuation(model, q.context, f" {c}") for c in q.choices]

    def prompts(texts: list[str]) -> float:
        rows = [model.tokenize(t) for t in texts]
        return sum(len(r) for r in rows) / len(rows) - common_prefix(rows)

    pairs = [per_choice(q) for q in questions]
    n = len(questions)
    return {
        "lm-eval": sum(len(c) + len(x) - 1 for each in pairs for c, x in each) / n,
        "loglik": sum(len(each[0][0]) + sum(len(x) - 1 for _, x in each) for each in pairs) / n,
        "letter": prompts([model.render(to_messages(render_mc(q))) for q in questions]),
        "letter_raw": prompts([render_mc_raw(q) for q in questions]),
    }


def agreement(ours: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    """How closely our per-choice log-likelihoods match lm-eval's, and how often the argmax agrees."""
    common = [i for i in ref["lls"] if i in (ours["lls"] or {})]
    diffs = [abs(a - b) for i in common for a, b in zip(ours["lls"][i], ref["lls"][i], strict=True)]
    same = sum(_argmax(ours["lls"][i]) == _argmax(ref["lls"][i]) for i in common)
    return {"max_abs_ll_diff": max(diffs) if diffs else float("nan"), "argmax_agreement": same / max(len(common), 1)}


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda k: values[k])


def report(results: list[dict[str, Any]]) -> str:
    """A markdown table: accuracy, acc_norm, questions per second, ratio to lm-eval, tokens read."""
    ref = results[0]
    ref_qps = ref["n"] / ref["seconds"]
    head = "| method | n | acc | acc_norm | q/s | vs lm-eval | ll diff (max) | argmax agree | tokens/q |"
    lines = [head, "|" + "---|" * 9]
    for r in results:
        qps = r["n"] / r["seconds"]
        norm = f"{100 * r['acc_norm']:.2f}" if r.get("acc_norm") is not None else "-"
        agree = agreement(r, ref) if r is not ref and r.get("lls") else None
        diff = f"{agree['max_abs_ll_diff']:.4f}" if agree else "-"
        same = f"{100 * agree['argmax_agreement']:.1f}%" if agree else "-"
        tokens = f"{r['tokens_per_question']:.1f}" if r.get("tokens_per_question") else "-"
        lines.append(
            f"| {r['method']} | {r['n']} | {100 * r['acc']:.2f} | {norm} | {qps:.2f} | {qps / ref_qps:.2f}x "
            f"| {diff} | {same} | {tokens} |"
        )
    return "\n".join(lines)


def _done(result: dict[str, Any]) -> dict[str, Any]:
    """Report each method as it finishes (a long run interrupted still leaves its numbers on stderr)."""
    shown = {k: v for k, v in result.items() if k != "lls"}
    print(f"done: {json.dumps(shown)} ({result['n'] / result['seconds']:.3f} q/s)", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run lm-eval and our modes on the same questions; print the table and the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ARC-Challenge JSONL (hub row schema)")
    parser.add_argument("--limit", type=int, help="the first N questions only")
    parser.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size (the issue's reference: 8)")
    parser.add_argument("--no-llamacpp", action="store_true", help="skip the llama.cpp rows")
    parser.add_argument("--out", type=Path, help="write parity.json here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    from benchmarks.tasks import load_task
    from tutor.models import load_model
    from tutor.models.embedded import hf_checkpoint

    checkpoint = hf_checkpoint()
    with tempfile.TemporaryDirectory(prefix="parity-") as name:
        tmp = Path(name)
        results = [_done(run_lmeval(checkpoint, args.data, args.limit, args.batch_size, tmp))]
        hf = load_model(str(checkpoint), backend="transformers")
        results += [_done(run_ours(hf, m, args.data, args.limit, tmp, "transformers")) for m in OUR_MODES]
        if not args.no_llamacpp:
            llama = load_model("default")
            results += [_done(run_ours(llama, m, args.data, args.limit, tmp, "llama.cpp")) for m in OUR_MODES]
    counts = tokens_read(hf, load_task("arc_challenge", args.data, limit=args.limit))
    for r in results:
        r["tokens_per_question"] = counts[r["mode"]]
    table = report(results)
    print(table)
    payload = [{k: v for k, v in r.items() if k != "lls"} for r in results]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "parity.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        (args.out / "parity.md").write_text(table + "\n", encoding="utf-8")
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
