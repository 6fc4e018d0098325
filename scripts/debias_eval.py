"""Letter scoring with and without debiasing: accuracy, the letters answered, and the cost, side by side.

For each task, one process, one model, one method after another (``none``, ``pride``, ``cyclic``), each a normal
``ta bench run`` directory; prints accuracy with its 95% interval, how often each letter was answered against how
often it is right, questions per second (wall clock, PriDe's estimation included) and the cost against ``none``::

    flock -w 5400 /tmp/team/heavy.lock .venv/bin/python scripts/debias_eval.py --threads 1 --out runs/debias

The shared validation files by default: ARC-Challenge validation (299) and TruthfulQA MC1 (205).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file from a checkout

DEFAULT_DATA = ROOT.parent / "shared" / "data"


def measure(model: Any, task: str, method: str, args: argparse.Namespace, where: Path) -> dict[str, Any]:
    """One run of ``task`` with ``method``, timed end to end."""
    from benchmarks.run import RunSpec, read_predictions, run

    spec = RunSpec(task, args.mode, data=args.data, sample=args.sample, debias=method, out=where / f"{task}-{method}")
    start = time.perf_counter()
    summary = run(model, spec, progress=False)
    seconds = time.perf_counter() - start
    result = {"task": task, "method": method, "seconds": round(seconds, 3), **summary}
    if method != "none":  # the same questions read without debiasing: the "before" of this very run
        rows = read_predictions(spec.directory / "predictions.jsonl")
        single = [r for r in rows if not r["extra"]["estimation"]]
        result["single_pass_seconds"] = sum(r["seconds"] for r in single) / max(len(single), 1) * len(rows)
    return result


def letters(counts: dict[str, int] | None) -> str:
    """``A 290, B 5, ...`` in letter order."""
    return ", ".join(f"{k} {v}" for k, v in sorted((counts or {}).items())) or "-"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per task and method."""
    lines = [
        "| task | method | n | accuracy [95% CI] | before (same run, undebiased) | answered | answered before "
        "| right | questions/s | cost vs none |",
        "|---|---|---|---|---|---|---|---|---|---|",
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
            f"| {qps:.2f} | {cost} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every task with every method; print the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a directory laid out like ../shared/data")
    parser.add_argument("--tasks", nargs="+", default=["arc_challenge", "truthfulqa_mc1"])
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
