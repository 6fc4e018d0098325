"""How often the tutor states the course's fact: ungrounded vs grounded (extractive and generative), in one run.

    python scripts/tutor_eval.py [--limit N] [--model SPEC] [--kb course] [--out results.json]

The questions (tests/data/tutor_eval.jsonl) are phrased as a student would ask them, each with the reference
fact and keyword groups: an answer states the fact when every group has one alternative in it (case-insensitive,
at the start of a word). Off-topic questions (tests/data/tutor_offtopic.jsonl) must get "not in the course
material". Prints one table with 95% Wilson intervals; every answer goes to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def states_fact(answer: str, groups: list[list[str]]) -> bool:
    """Every keyword group has an alternative that starts a word of the answer."""
    low = answer.lower()
    return all(any(re.search(rf"(?<![a-z0-9]){re.escape(alt.lower())}", low) for alt in group) for group in groups)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of k successes in n."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run every mode over the questions and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--kb", default="course")
    parser.add_argument("--limit", type=int, help="the first N questions only")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="every K-th question (2: one per lesson)")
    parser.add_argument(
        "--modes", default="ungrounded,extractive,generative", help="comma-separated; also extractive-free"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, help="llama.cpp CPU threads (default: llama.cpp's choice)")
    args = parser.parse_args(argv)

    from tutor.explain import Tutor
    from tutor.grounded import NOT_IN_COURSE, GroundedTutor
    from tutor.knowledge import open_kb
    from tutor.models import load_model

    model = load_model(args.model, **({"n_threads": args.threads} if args.threads else {}))
    kb = open_kb(args.kb)
    questions = read_jsonl(DATA / "tutor_eval.jsonl")[:: args.every][: args.limit]
    offtopic = read_jsonl(DATA / "tutor_offtopic.jsonl")
    modes = args.modes.split(",")
    ungrounded = Tutor(model)
    # "extractive-free": the model chooses every sentence (no best-ranked sentence first), for comparison.
    tutors = {
        m: GroundedTutor(model, kb, mode=m.removesuffix("-free"), lead=not m.endswith("-free"))
        for m in modes
        if m != "ungrounded"
    }
    rows: list[dict] = []
    for i, q in enumerate(questions, 1):
        row = {"question": q["question"], "lesson": q["lesson"]}
        for mode in modes:
            started = time.perf_counter()
            if mode == "ungrounded":
                text, sources = "".join(ungrounded.stream(q["question"])), []
            else:
                answer = tutors[mode].answer(q["question"])
                text, sources = answer.text, answer.sources
            row[mode] = {
                "answer": text,
                "sources": sources,
                "states_fact": states_fact(text, q["keywords"]),
                "cites_lesson": any(s.startswith(q["lesson"]) for s in sources),
                "seconds": round(time.perf_counter() - started, 2),
            }
        rows.append(row)
        print(f"{i}/{len(questions)} " + " ".join(f"{m}={row[m]['states_fact']:d}" for m in modes), file=sys.stderr)
    refused = {m: sum(t.answer(q["question"]).text == NOT_IN_COURSE for q in offtopic) for m, t in tutors.items()}
    falsely_refused = {m: sum(r[m]["answer"] == NOT_IN_COURSE for r in rows) for m in tutors}

    n = len(rows)
    print(f"\n{n} course questions, {len(offtopic)} off-topic; model {model.name}, knowledge base {kb.name!r}\n")
    header = "mode | states the fact | 95% interval | cites its lesson | off-topic refused | on-topic refused | s/q"
    print(f"| {header} |")
    print("|---|---|---|---|---|---|---|")
    base = sum(r["ungrounded"]["states_fact"] for r in rows) if "ungrounded" in modes else None
    for mode in modes:
        k = sum(r[mode]["states_fact"] for r in rows)
        lo, hi = wilson(k, n)
        cites = "-" if mode == "ungrounded" else f"{sum(r[mode]['cites_lesson'] for r in rows) / n:.0%}"
        off = "-" if mode == "ungrounded" else f"{refused[mode]}/{len(offtopic)}"
        on = "-" if mode == "ungrounded" else f"{falsely_refused[mode]}/{n}"
        secs = sum(r[mode]["seconds"] for r in rows) / n
        ratio = f" ({k / base:.1f}x)" if base and mode != "ungrounded" else ""
        print(f"| {mode} | {k}/{n} = {k / n:.0%}{ratio} | {lo:.0%}-{hi:.0%} | {cites} | {off} | {on} | {secs:.1f} |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "offtopic_refused": refused}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
