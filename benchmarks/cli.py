"""``ta bench run`` and ``ta bench compare``.

``ta bench run TASK [--model SPEC] [--backend B] [--adapter DIR] [--threads N] [--mode M] [--data PATH]
[--split S] [--limit N | --sample N] [--seed N] [--batch-size N] [--out DIR]`` builds a :class:`~benchmarks.run.RunSpec`
(its flags mirror the spec's fields), prints a progress bar on stderr and, as its last stdout line, the
summary as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.modes import MODES
from benchmarks.run import RunSpec, run
from benchmarks.tasks import TASKS, answer_skew
from tutor.cli import add_model_args, load_from_args


def register(sub: Any) -> None:
    """Add ``bench`` with its ``run`` and ``compare`` subcommands to ``ta``."""
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


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The :class:`~benchmarks.run.RunSpec` the flags describe (checked: a bad task or mode fails here)."""
    return RunSpec(
        task=args.task,
        mode=args.mode,
        model=args.model,
        backend=args.backend,
        adapter=args.adapter,
        data=args.data,
        split=args.split,
        limit=args.limit,
        sample=args.sample,
        seed=args.seed,
        batch_size=args.batch_size,
        out=args.out,
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Check the spec and its questions, then load the model and run."""
    spec = spec_from_args(args)
    questions = spec.questions()  # bad data fails here, before the model loads
    if spec.limit and (warning := answer_skew(questions, spec.whole_set().questions())):
        print(warning, file=sys.stderr)
    summary = run(load_from_args(args), spec, progress=not args.no_progress)
    print(f"run directory: {spec.directory}")
    print(json.dumps(summary))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the comparison table (and draw it with --plot)."""
    from benchmarks.report import compare_table, plot

    print(compare_table(args.runs))
    if args.plot:
        print(f"plot: {plot(args.runs, args.plot)}")
    return 0
