"""``ta bench run`` and ``ta bench compare``.

``ta bench run TASK [--model SPEC] [--adapter DIR] [--mode M] [--data PATH] [--split S] [--limit N | --sample N]
[--out DIR]``
prints a progress bar on stderr and, as its last stdout line, the summary as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.modes import MODES
from benchmarks.tasks import TASKS


def register(sub: Any) -> None:
    """Add ``bench`` with its ``run`` and ``compare`` subcommands to ``ta``."""
    from tutor.commands import add_model_args

    bench = sub.add_parser("bench", help="multiple-choice benchmarks (ARC, TruthfulQA, OpenBookQA)")
    inner = bench.add_subparsers(dest="bench_command", metavar="{run,compare}", required=True)

    p = inner.add_parser("run", help="score a task; writes config.json, predictions.jsonl, summary.json")
    p.add_argument("task", help=f"one of: {', '.join(TASKS)}")
    p.add_argument("--mode", default="letter", help=f"one of: {', '.join(MODES)} (default: letter)")
    p.add_argument("--data", type=Path, metavar="PATH", help="a local file, or a directory like ../shared/data")
    p.add_argument("--split", help="hub split, or the file for that split inside a --data directory")
    p.add_argument("--limit", type=int, metavar="N", help="the first N questions only")
    p.add_argument("--sample", type=int, metavar="N", help="N questions drawn at random (with --seed), in file order")
    p.add_argument("--out", type=Path, metavar="DIR", help="run directory (default: runs/TASK-MODE-MODEL)")
    p.add_argument("--seed", type=int, default=0, help="answer-shuffle seed (TruthfulQA) and --sample's draw")
    p.add_argument("--batch-size", type=int, metavar="N", help="questions per model call")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_args(p)
    p.set_defaults(func=cmd_run)

    p = inner.add_parser("compare", help="markdown table of runs: model | ARC | TruthfulQA | parse failures")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw the table as a bar chart")
    p.set_defaults(func=cmd_compare)


def cmd_run(args: argparse.Namespace) -> int:
    """Validate the task, mode and data, then load the model and run."""
    from benchmarks.modes import get_mode
    from benchmarks.run import run
    from benchmarks.tasks import answer_skew, load_task
    from tutor.commands import load_from_args

    get_mode(args.mode)
    # Fails on bad input before the model loads.
    questions = load_task(args.task, args.data, args.split, args.limit, args.seed, args.sample)
    if args.limit and (warning := answer_skew(questions, load_task(args.task, args.data, args.split, None, args.seed))):
        print(warning, file=sys.stderr)
    model = load_from_args(args)
    out = args.out or Path("runs") / f"{args.task}-{args.mode}-{Path(str(args.model)).stem}"
    summary = run(
        model, args.task, args.mode, out, data=args.data, split=args.split, limit=args.limit, seed=args.seed,
        model_spec=args.model, adapter=args.adapter, progress=not args.no_progress, batch_size=args.batch_size,
        sample=args.sample,
    )  # fmt: skip
    print(f"run directory: {out}")
    print(json.dumps(summary))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the comparison table (and draw it with --plot)."""
    from benchmarks.report import compare_table, plot

    print(compare_table(args.runs))
    if args.plot:
        print(f"plot: {plot(args.runs, args.plot)}")
    return 0
