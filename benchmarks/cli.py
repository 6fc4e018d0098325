"""``ta bench run``, ``ta bench compare`` and ``ta bench suite``.

``ta bench run TASK [--model SPEC] [--backend B] [--adapter DIR] [--threads N] [--mode M] [--debias D] [--data PATH]
[--split S] [--limit N | --sample N] [--seed N] [--batch-size N] [--out DIR]`` builds a :class:`~benchmarks.run.RunSpec`
(its flags mirror the spec's fields), prints a progress bar on stderr and, as its last stdout line, the
summary as one JSON object.

``ta bench suite EXPERIMENT.yaml [--data DIR] [--out DIR] [--smoke | --questions N --max-steps N]`` runs an experiment
file (:mod:`benchmarks.suite`) and prints its table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.debias import METHODS
from benchmarks.modes import MODES
from benchmarks.run import RunSpec, run
from benchmarks.tasks import TASKS, answer_skew
from tutor.cli import add_model_args, load_from_args


def register(sub: Any) -> None:
    """Add ``bench`` with its ``run`` and ``compare`` subcommands to ``ta``."""
    bench = sub.add_parser("bench", help="multiple-choice benchmarks (ARC, TruthfulQA, OpenBookQA)")
    inner = bench.add_subparsers(dest="bench_command", metavar="{run,compare,suite}", required=True)

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
    p.add_argument(
        "--debias", choices=METHODS, default="none", help="letter modes: divide out the letter prior (default: none)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_args(p)
    p.set_defaults(func=cmd_run)

    p = inner.add_parser("compare", help="markdown table of runs: model | ARC | TruthfulQA | parse failures")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw the table as a bar chart")
    p.set_defaults(func=cmd_compare)

    p = inner.add_parser("suite", help="run an experiment file: models x tasks x modes x seeds, table, plot, JSON")
    p.add_argument("experiment", type=Path, help="an experiment YAML, e.g. experiments/original_table.yaml")
    p.add_argument("--data", metavar="DIR", help="the data directory (overrides the file's data:)")
    p.add_argument("--out", metavar="DIR", help="the suite's directory (default: runs/suites/NAME)")
    p.add_argument("--questions", type=int, metavar="N", help="at most N questions per task (a quick version)")
    p.add_argument("--max-steps", type=int, metavar="N", help="train fine-tuned models for N steps only")
    p.add_argument("--smoke", action="store_true", help="2 questions a task, 2 training steps on 12 conversations")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads per model (overrides the file's threads:)")
    p.add_argument("--report", action="store_true", help="only write the table, plot and JSON of the cells run so far")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_suite)


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
        debias=args.debias,
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Check the spec and its questions, then load the model and run."""
    spec = spec_from_args(args)
    questions = spec.questions()  # bad data fails here, before the model loads
    if spec.limit and (warning := answer_skew(questions, spec.whole_set().questions())):
        print(warning, file=sys.stderr)
    summary = run(load_from_args(args), spec, progress=not args.no_progress)
    if hint := position_hint(summary):
        print(hint, file=sys.stderr)
    print(f"run directory: {spec.directory}")
    print(json.dumps(summary))
    return 0


def position_hint(summary: dict[str, Any]) -> str | None:
    """A note when an undebiased letter run answered one letter far more often than it is right, else None."""
    answered, right, n = summary.get("answered") or {}, summary.get("right") or {}, summary.get("n") or 0
    if summary.get("mode") not in ("letter", "letter_raw") or summary.get("debias") or n < 10 or not answered:
        return None
    letter = max(answered, key=answered.get)
    if answered[letter] / n < 0.6 or answered[letter] <= 2 * right.get(letter, 0):
        return None
    return (
        f"note: the model answered {letter} {answered[letter]} times in {n} ({letter} is right {right.get(letter, 0)} "
        f"times): a position bias; --debias pride divides it out (README: Benchmarks)"
    )


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the comparison table (and draw it with --plot)."""
    from benchmarks.report import compare_table, plot

    print(compare_table(args.runs))
    if args.plot:
        print(f"plot: {plot(args.runs, args.plot)}")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    """Check the experiment (every cell) before anything loads, run it, print the table."""
    from dataclasses import replace

    from benchmarks.suite import SMOKE_QUESTIONS, SMOKE_STEPS, SuiteError, load_experiment, run_suite, write_report

    exp = load_experiment(args.experiment, data=args.data, out=args.out)
    for flag, value in (("--questions", args.questions), ("--max-steps", args.max_steps), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise SuiteError(f"{flag} must be at least 1, got {value}")
    if args.smoke or args.questions or args.max_steps:
        # A reduced version writes beside the full one (its cells ask other questions: they could not resume there).
        tag = "smoke" if args.smoke else f"q{args.questions or 'all'}-steps{args.max_steps or 'all'}"
        out = args.out or f"{exp.directory}-{tag}"
        if args.smoke:
            exp = exp.reduced(SMOKE_QUESTIONS, SMOKE_STEPS, tiny=True)
        else:
            exp = exp.reduced(args.questions, args.max_steps)
        exp = replace(exp, out=str(out))
    if args.threads:
        exp = replace(exp, threads=args.threads)
    if args.report:  # no model, no training: where an unfinished suite stands (unfinished cells marked partial)
        results = write_report(exp)
    else:
        results = run_suite(exp, progress=not args.no_progress)
    print(results["table"])
    print(f"suite directory: {exp.directory} (table.md, plot.png, results.json)")
    return 0
