"""Grounded quizzes written with the model's part one question at a time vs N at once, side by side in one run.

    .venv/bin/python scripts/quiz_parallel.py [--widths 1,4] [--topics 4] [-n 10] [--seed 0] [--threads 2]

One model, one knowledge base (the starter course), the same requests: each topic's quiz is written once per width,
the order of the widths alternating from topic to topic so that neither always runs first (a warm cache or a load
spike would favour one side). Prints per width the wall time, the questions written and the ``ta quiz-eval``
figures, the ratio of wall times to the first width, and whether the quizzes are the same question for question
(greedy decoding is deterministic whatever else the model runs, so they should be). A measurement script, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print its table; exit 1 if a quiz crashed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="1,4", help="parallel widths to compare, the first is the baseline")
    p.add_argument("--topics", type=int, default=4, help="the first N topics of quizgen/topics_ml.txt")
    p.add_argument("-n", type=int, default=10, help="questions per quiz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: every core)")
    p.add_argument("--out", type=Path, help="write the figures and quizzes as JSON")
    args = p.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]

    from quizgen import evaluate
    from quizgen.program import QuizAgent
    from quizgen.request import QuizRequest
    from tutor.knowledge import COURSE, open_kb
    from tutor.models import load_model

    topics = evaluate.read_topics(ROOT / "quizgen" / "topics_ml.txt")[: args.topics]
    options = {"n_threads": args.threads} if args.threads else {}
    model = load_model("default", **options)
    kb = open_kb(COURSE)
    agent = QuizAgent(model, kb=kb)
    document_text = kb.document_text
    reports: dict[int, list] = {w: [] for w in widths}
    stems: dict[int, list[list[str]]] = {w: [] for w in widths}
    for i, topic in enumerate(topics):
        order = widths if i % 2 == 0 else widths[::-1]
        for width in order:
            request = QuizRequest(topic, n=args.n, seed=args.seed, grounded=True, parallel=width)
            started = time.perf_counter()
            quiz = agent.run(request)
            seconds = time.perf_counter() - started
            reports[width].append(evaluate.score_quiz(quiz, seconds, args.n, lambda _kb, doc: document_text(doc)))
            stems[width].append([item.question.stem for item in quiz.questions])
            print(f"{topic!r} width {width}: {len(quiz)} questions in {seconds:.1f} s", file=sys.stderr, flush=True)
    model.close()

    base = widths[0]
    totals = {w: evaluate.total(reports[w]) for w in widths}
    print(f"{len(topics)} topics x {args.n} questions, seed {args.seed}, threads {args.threads or 'all'}\n")
    print("| parallel | wall s | ratio | questions | verified | acceptable | flaws/q | key in source | same quizzes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in widths:
        t = totals[w]
        same = sum(a == b for a, b in zip(stems[w], stems[base], strict=True))
        print(
            f"| {w} | {t.seconds:.1f} | {t.seconds / totals[base].seconds:.2f}x | {t.questions}/{t.requested} "
            f"| {t.pct(t.verified)} | {t.pct(t.acceptable)} | {t.flaws / max(t.questions, 1):.2f} "
            f"| {t.pct(t.key_in_source, t.grounded)} | {same}/{len(topics)} |"
        )
    if args.out:
        payload = {str(w): {"reports": evaluate.as_dicts(reports[w]), "stems": stems[w]} for w in widths}
        args.out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 1 if any(t.crashes for t in totals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
