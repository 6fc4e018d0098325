"""Letter scoring with and without debiasing: accuracy, the letters answered, and the cost, side by side.

For each task, one process, one model, one method after another (``none``, ``pride``, ``cyclic``), each a normal
``ta bench run`` directory; prints accuracy with its 95% interval, how often each letter was answered against how
often it is right, questions per second (wall clock, PriDe's estimation included) and the cost against ``none``::

    flock -w 5400 /tmp/team/heavy.lock .venv/bin/python scripts/debias_eval.py --threads 1 --out runs/debias

The shared validation files by default: ARC-Challenge validation (299), TruthfulQA MC1 and MC2 (205 each).
A debiased run reads every question both ways, so the "before" is the same run's undebiased reading, and the
difference is paired on the same questions (McNemar's exact test for right/wrong, a paired normal test for MC2's
probability mass).

MC2 in ``letter`` mode lists every true and false answer under a letter and scores the probability mass the
letters of the true ones get, so a letter prior moves that mass and debiasing applies. In ``loglik`` mode (MC2's
usual protocol) no letter is read, only each answer's own log-likelihood: there is nothing to debias, and
``--debias`` refuses it (``benchmarks.debias.check``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file from a checkout

DEFAULT_DATA = ROOT.parent / "shared" / "data"


def measure(model: Any, task: str, method: str, args: argparse.Namespace, where: Path) -> dict[str, Any]:
    """One run of ``task`` with ``method``, timed end to end."""
    from benchmarks.run import RunSpec, read_predictions, run
    from benchmarks.suite import paired

    spec = RunSpec(task, args.mode, data=args.data, sample=args.sample, debias=method, out=where / f"{task}-{method}")
    start = time.perf_counter()
    summary = run(model, spec, progress=False)
    seconds = time.perf_counter() - start
    result = {"task": task, "method": method, "seconds": round(seconds, 3), **summary}
    rows = read_predictions(spec.directory / "predictions.jsonl")
    mass = any(len(r["gold"]) > 1 for r in rows)
    # How many questions hold a right answer under each letter (MC2: several letters a question).
    result["right"] = dict(sorted(Counter(g for r in rows for g in r["gold"]).items()))
    result["top1"] = sum(1 for r in rows if r["correct"]) / max(len(rows), 1)  # the answered option is a right one
    if method != "none":  # the same questions read without debiasing: the "before" of this very run
        single = [r for r in rows if not r["extra"]["estimation"]]
        result["single_pass_seconds"] = sum(r["seconds"] for r in single) / max(len(single), 1) * len(rows)
        result["top1_raw"] = sum(1 for r in rows if r["extra"]["correct_raw"]) / max(len(rows), 1)
        before = [{"id": r["id"], "score": r["extra"]["score_raw"]} for r in rows]
        result["vs_undebiased"] = paired(before, rows, binary=not mass)
        if mass:  # the top-1 answer right or wrong, before and after: McNemar on the same questions
            before = [{"id": r["id"], "score": float(r["extra"]["correct_raw"])} for r in rows]
            after = [{"id": r["id"], "score": float(r["correct"])} for r in rows]
            result["top1_vs_undebiased"] = paired(before, after, binary=True)
    return result


def letters(counts: dict[str, int] | None) -> str:
    """``A 290, B 5, ...`` in letter order."""
    return ", ".join(f"{k} {v}" for k, v in sorted((counts or {}).items())) or "-"


def difference(stats: dict[str, Any] | None) -> str:
    """``+6.0 [+0.6, +11.4], +60 / -42, p 0.09`` (points, 95% interval, questions gained and lost, p-value)."""
    if not stats:
        return "-"
    lo, hi = stats["ci95"]
    counts = f", +{stats['gained']} / -{stats['lost']}" if "gained" in stats else ""
    return f"{100 * stats['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{counts}, p {stats['p']:.2g}"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per task and method."""
    lines = [
        "| task | method | n | accuracy [95% CI] | before (same run, undebiased) | answered | answered before "
        "| right | debiased - before (points) | questions/s | cost vs none |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {r["task"]: r["n"] / r["seconds"] for r in results if r["method"] == "none"}
    for r in results:
        qps = r["n"] / r["seconds"]
        lo, hi = r["ci95"]
        if r["task"] in base:
            cost = f"{base[r['task']] / qps:.2f}x"
        elif r.get("single_pass_seconds"):  # no `none` run: against this run's own single passes
            cost = f"{r['seconds'] / r['single_pass_seconds']:.2f}x (vs its single passes)"
        else:
            cost = "-"
        before = f"{100 * r['accuracy_raw']:.1f}" if "accuracy_raw" in r else "-"
        lines.append(
            f"| {r['task']} | {r['method']} | {r['n']} | {100 * r['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"| {before} | {letters(r.get('answered'))} | {letters(r.get('answered_raw'))} | {letters(r.get('right'))} "
            f"| {difference(r.get('vs_undebiased'))} | {qps:.2f} | {cost} |"
        )
    mass = [r for r in results if "top1_vs_undebiased" in r]
    if mass:  # MC2: the mass is the score; whether the top answer is a true one says the same thing in counts
        lines += ["", "| task | method | top answer a right one: before -> after (%) | difference (points) |",
                  "|---|---|---|---|"]  # fmt: skip
        for r in mass:
            lines.append(f"| {r['task']} | {r['method']} | {100 * r['top1_raw']:.1f} -> {100 * r['top1']:.1f} "
                         f"| {difference(r['top1_vs_undebiased'])} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every task with every method; print the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a directory laid out like ../shared/data")
    parser.add_argument("--tasks", nargs="+", default=["arc_challenge", "truthfulqa_mc1", "truthfulqa_mc2"])
    parser.add_argument("--methods", nargs="+", default=["none", "pride", "cyclic"])
    parser.add_argument("--mode", default="letter", choices=("letter", "letter_raw"))
    parser.add_argument("--sample", type=int, metavar="N", help="N questions drawn at random per task")
    parser.add_argument("--model", default="default", help="a model spec (default: the embedded model)")
    parser.add_argument("--backend", choices=("llamacpp", "transformers"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1 on a shared machine)")
    parser.add_argument("--out", type=Path, help="keep the run directories and write debias.json/.md here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from tutor.models import load_model

    model = load_model(args.model, backend=args.backend, n_threads=args.threads)
    results = []
    with tempfile.TemporaryDirectory(prefix="debias-") as tmp:
        where = args.out or Path(tmp)
        for task in args.tasks:
            for method in args.methods:
                result = measure(model, task, method, args, where)
                print(f"done: {task} {method}: {100 * result['accuracy']:.1f}% in {result['seconds']} s",
                      file=sys.stderr, flush=True)  # fmt: skip
                results.append(result)
    model.close()
    text = table(results)
    print(f"model {model.name} ({model.backend}), mode {args.mode}, {args.threads} thread(s)")
    print(text)
    if args.out:
        (args.out / "debias.md").write_text(text + "\n", encoding="utf-8")
        (args.out / "debias.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
