"""Before/after figures for ``ta optimize``: the quiz and the tutor on held-out lessons, in one run.

    flock -w 5400 /tmp/team/heavy.lock python scripts/optimize_eval.py --threads 1 [--out DIR] [--limit N]

The split (tutor/optimize_data/, README there) holds out whole lessons: no topic or question of the held-out
files shares a lesson with the train or dev files. For each program this script compiles it with
BootstrapFewShot on the train file (the model's own passing outputs as demos), saves it to DIR, and scores the
unoptimised and the compiled program on the held-out file:

* **quiz** (the ungrounded writer): the share of asked-for questions that pass every check, are verified and
  have at most one item-writing flaw ("good"), with 95% Wilson intervals; and the mean quiz-eval score.
* **tutor** (the DSPy tutor): the share of answers that state the reference fact (scripts/tutor_eval.py's test),
  95% Wilson intervals, and the exact McNemar test on the paired answers.

The difference's 95% interval is Newcombe's (hybrid Wilson); a gain is significant when it excludes 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from tutor_eval import wilson  # noqa: E402 - the lead's interval, one definition


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval of p2 - p1 (Newcombe's hybrid score method, from the two Wilson intervals)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p2 - p1
    return d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


def mcnemar(before: list[bool], after: list[bool]) -> float:
    """Exact two-sided McNemar p-value for paired successes."""
    b = sum(x and not y for x, y in zip(before, after, strict=True))
    c = sum(y and not x for x, y in zip(before, after, strict=True))
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def line(name: str, k: int, n: int) -> str:
    """One table cell: k/n = p% [lo-hi]."""
    lo, hi = wilson(k, n)
    return f"{name}: {k}/{n} = {k / n:.0%} [{lo:.0%}-{hi:.0%}]"


def quiz_part(model, out: Path, limit: int | None, demos: int) -> dict:
    """Compile the quiz writer, then score both programs on the held-out topics."""
    from tutor.optimize import (
        DATA,
        OptimizeConfig,
        build_program,
        optimize,
        quiz_good_questions,
        quiz_score,
        read_split,
    )

    train = read_split("quiz", DATA / "quiz_train.jsonl")[:limit]
    heldout = read_split("quiz", DATA / "quiz_heldout.jsonl")[:limit]
    compiled, info = optimize(OptimizeConfig("quiz", "bootstrap", demos=demos), model, train, out=out / "quiz.json")
    result: dict = {"compile": info, "programs": {}}
    for name, program in (("before", build_program("quiz", model)), ("after", compiled)):
        good = asked = 0
        scores, seconds = [], 0.0
        for example in heldout:
            started = time.perf_counter()
            try:
                pred = program(**example.inputs())
                g, a = quiz_good_questions(example, pred)
                scores.append(quiz_score(example, pred))
            except Exception as exc:  # a crash is a quiz of no good questions, said
                print(f"  quiz {name} {example.topic}: {type(exc).__name__}: {exc}", file=sys.stderr)
                g, a = 0, example.n
                scores.append(0.0)
            seconds += time.perf_counter() - started
            good, asked = good + g, asked + a
            print(f"  quiz {name} {example.topic!r}: {g}/{a} good, score {scores[-1]:.2f}", file=sys.stderr, flush=True)
        result["programs"][name] = {"good": good, "asked": asked, "scores": scores, "seconds": round(seconds, 1)}
    return result


def tutor_part(model, out: Path, limit: int | None, demos: int, labeled: int) -> dict:
    """Compile the tutor, then score both programs on the held-out questions."""
    from tutor.optimize import DATA, OptimizeConfig, build_program, optimize, read_split, tutor_score

    train = read_split("tutor", DATA / "tutor_train.jsonl")[:limit]
    heldout = read_split("tutor", DATA / "tutor_heldout.jsonl")[:limit]
    config = OptimizeConfig("tutor", "bootstrap", demos=demos, labeled=labeled)
    compiled, info = optimize(config, model, train, out=out / "tutor.json")
    result: dict = {"compile": info, "programs": {}}
    for name, program in (("before", build_program("tutor", model)), ("after", compiled)):
        stated, answers, seconds = [], [], 0.0
        for example in heldout:
            started = time.perf_counter()
            pred = program(question=example.question)
            seconds += time.perf_counter() - started
            stated.append(bool(tutor_score(example, pred)))
            answers.append(pred.answer)
        print(f"  tutor {name}: {sum(stated)}/{len(stated)}", file=sys.stderr, flush=True)
        result["programs"][name] = {"stated": stated, "answers": answers, "seconds": round(seconds, 1)}
    return result


def report(quiz: dict | None, tutor: dict | None) -> str:
    """The markdown table of both parts."""
    rows = ["| program | figure | before [95%] | after [95%] | difference [95%] | significant | s before/after |"]
    rows.append("|---|---|---|---|---|---|---|")
    if quiz:
        b, a = quiz["programs"]["before"], quiz["programs"]["after"]
        lo, hi = newcombe(b["good"], b["asked"], a["good"], a["asked"])
        diff = a["good"] / a["asked"] - b["good"] / b["asked"]
        rows.append(
            f"| quiz (ungrounded writer) | good questions | {line('', b['good'], b['asked'])[2:]} "
            f"| {line('', a['good'], a['asked'])[2:]} | {diff:+.0%} [{lo:+.0%}, {hi:+.0%}] "
            f"| {'yes' if lo > 0 or hi < 0 else 'no'} | {b['seconds']:.0f}/{a['seconds']:.0f} |"
        )
        mb, ma = sum(b["scores"]) / len(b["scores"]), sum(a["scores"]) / len(a["scores"])
        rows.append(
            f"| quiz (ungrounded writer) | mean quiz score (0-1) | {mb:.2f} | {ma:.2f} | {ma - mb:+.2f} | - | - |"
        )
    if tutor:
        b, a = tutor["programs"]["before"]["stated"], tutor["programs"]["after"]["stated"]
        n = len(b)
        lo, hi = newcombe(sum(b), n, sum(a), n)
        p = mcnemar(b, a)
        diff = (sum(a) - sum(b)) / n
        sb, sa = tutor["programs"]["before"]["seconds"], tutor["programs"]["after"]["seconds"]
        rows.append(
            f"| tutor (DSPy tutor) | states the fact | {line('', sum(b), n)[2:]} | {line('', sum(a), n)[2:]} "
            f"| {diff:+.0%} [{lo:+.0%}, {hi:+.0%}] | {'yes' if p < 0.05 else 'no'} (McNemar p={p:.2f}) "
            f"| {sb:.0f}/{sa:.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Compile, score, print the table; every answer and the programs go to --out."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp CPU threads (default 1: a shared machine)")
    parser.add_argument("--out", type=Path, default=Path("optimize_eval"), help="directory for programs and results")
    parser.add_argument("--limit", type=int, help="the first N examples of each split (a smoke run)")
    parser.add_argument("--parts", default="quiz,tutor")
    parser.add_argument("--demos", type=int, default=2, help="bootstrapped demos per predictor")
    parser.add_argument("--labeled", type=int, default=0, help="labeled demos for the tutor (the reference facts)")
    args = parser.parse_args(argv)

    from tutor.models import load_model

    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, n_threads=args.threads)
    parts = args.parts.split(",")
    started = time.perf_counter()
    # The tutor first: it is the quicker part, so a run cut short still has one result.
    tutor = tutor_part(model, args.out, args.limit, args.demos, args.labeled) if "tutor" in parts else None
    if tutor:
        (args.out / "tutor.results.json").write_text(json.dumps(tutor, indent=1), encoding="utf-8")
    quiz = quiz_part(model, args.out, args.limit, args.demos) if "quiz" in parts else None
    table = report(quiz, tutor)
    print(f"\nmodel {model.name}, {args.threads} thread(s), {time.perf_counter() - started:.0f} s in all\n")
    print(table)
    (args.out / "results.json").write_text(json.dumps({"quiz": quiz, "tutor": tutor}, indent=1), encoding="utf-8")
    (args.out / "table.md").write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
