"""How often the tutor states the course's fact: ungrounded vs grounded (extractive and generative), in one run.

    python scripts/tutor_eval.py [--limit N] [--model SPEC] [--kb course] [--out results.json]
    python scripts/tutor_eval.py --notes tests/data/notes_extra --questions tests/data/tutor_eval_extra.jsonl \
        --offtopic tests/data/tutor_offtopic_extra.jsonl --modes ranked,extractive --threads 1
    python scripts/tutor_eval.py ... --out after.json --baseline before.json   # paired wins and losses

The questions (tests/data/tutor_eval.jsonl) are phrased as a student would ask them, each with the reference
fact and keyword groups: an answer states the fact when every group has one alternative in it (case-insensitive,
at the start of a word). Off-topic questions (tests/data/tutor_offtopic.jsonl) must get "not in the course
material". Prints one table with 95% Wilson intervals; every answer goes to --out.

``--notes FILES`` indexes those files into a knowledge base in a scratch data directory (the user's own knowledge
bases are not touched) and asks it; the notes questions' ``lesson`` is the file name. Mode ``ranked`` is the
best-ranked sentence alone, with no model (what the extractive answer opens with).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
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


class Ranked:
    """The extractive tutor's opening sentence alone: what the ranking says before the model chooses anything."""

    def __init__(self, tutor: object) -> None:
        """Wrap a GroundedTutor (its model is never called)."""
        self.tutor = tutor

    def answer(self, question: str) -> object:
        """The best-ranked sentence with its source, or the usual refusal."""
        from tutor.grounded import NOT_IN_COURSE, Answer

        hits = self.tutor.retrieve(question)
        if not hits:
            return Answer(NOT_IN_COURSE, [], grounded=False)
        text, cite = self.tutor.offered_sentences(question, hits)[0]
        return Answer(text, [cite])


def paired(before: list[dict], after: list[dict], modes: list[str]) -> str:
    """Per mode, the questions this run answers and the baseline did not (wins) and the reverse (losses).

    With the two-sided sign-test p-value on those discordant pairs: the same questions are asked twice, so the
    pairs say more than two overlapping intervals do.
    """
    old = {r["question"]: r for r in before}
    lines = ["\n| mode | before | after | wins | losses | sign test p |", "|---|---|---|---|---|---|"]
    for mode in modes:
        both = [
            (old[r["question"]][mode]["states_fact"], r[mode]["states_fact"])
            for r in after
            if r["question"] in old and mode in old[r["question"]]
        ]
        if not both:
            continue
        wins, losses = sum(a and not b for b, a in both), sum(b and not a for b, a in both)
        n, k = wins + losses, min(wins, losses)
        p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
        before_k, after_k = sum(b for b, _ in both), sum(a for _, a in both)
        lines.append(f"| {mode} | {before_k}/{len(both)} | {after_k}/{len(both)} | {wins} | {losses} | {p:.2f} |")
    return "\n".join(lines)


def scratch_kb(paths: list[Path]) -> object:
    """A knowledge base of ``paths`` in a fresh data directory (TA_DATA_DIR is set for this process)."""
    from tutor.knowledge import open_kb

    os.environ["TA_DATA_DIR"] = tempfile.mkdtemp(prefix="tutor_eval_")
    kb = open_kb("notes", create=True)
    kb.add(paths)
    return kb


def main(argv: list[str] | None = None) -> int:
    """Run every mode over the questions and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--kb", default="course", help="a knowledge base by name (see `ta kb list`)")
    parser.add_argument("--notes", nargs="+", type=Path, help="index these files or folders and ask them (not --kb)")
    parser.add_argument("--questions", type=Path, default=DATA / "tutor_eval.jsonl", help="course questions (JSONL)")
    parser.add_argument("--offtopic", type=Path, default=DATA / "tutor_offtopic.jsonl", help="off-topic questions")
    parser.add_argument("--limit", type=int, help="the first N questions only")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="every K-th question (2: one per lesson)")
    parser.add_argument(
        "--modes", default="ungrounded,extractive,generative", help="comma-separated; also extractive-free, ranked"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--baseline", type=Path, help="an earlier run's --out: print paired wins and losses against it")
    parser.add_argument("--threads", type=int, help="llama.cpp CPU threads (default: llama.cpp's choice)")
    args = parser.parse_args(argv)

    from tutor.explain import Tutor
    from tutor.grounded import NOT_IN_COURSE, GroundedTutor
    from tutor.knowledge import open_kb
    from tutor.models import load_model

    modes = args.modes.split(",")
    kb = open_kb(args.kb) if args.notes is None else scratch_kb(args.notes)
    needs_model = any(m != "ranked" for m in modes)
    model = load_model(args.model, **({"n_threads": args.threads} if args.threads else {})) if needs_model else None
    questions = read_jsonl(args.questions)[:: args.every][: args.limit]
    offtopic = read_jsonl(args.offtopic)
    ungrounded = Tutor(model) if "ungrounded" in modes else None
    # "extractive-free": the model chooses every sentence (no best-ranked sentence first), for comparison.
    tutors = {
        m: Ranked(GroundedTutor(model, kb))
        if m == "ranked"
        else GroundedTutor(model, kb, mode=m.removesuffix("-free"), lead=not m.endswith("-free"))
        for m in modes
        if m != "ungrounded"
    }
    load, wall = os.getloadavg()[0], time.perf_counter()
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
    name = model.name if model is not None else "none"
    print(f"\n{n} course questions, {len(offtopic)} off-topic; model {name}, knowledge base {kb.name!r}")
    wall = time.perf_counter() - wall
    print(f"{wall:.0f} s in all; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n")
    header = "mode | states the fact | 95% interval | cites its lesson | off-topic refused | on-topic refused"
    print(f"| {header} | chars | s/q |")
    print("|---|---|---|---|---|---|---|---|")
    base = sum(r["ungrounded"]["states_fact"] for r in rows) if "ungrounded" in modes else None
    for mode in modes:
        k = sum(r[mode]["states_fact"] for r in rows)
        lo, hi = wilson(k, n)
        cites = "-" if mode == "ungrounded" else f"{sum(r[mode]['cites_lesson'] for r in rows) / n:.0%}"
        off = "-" if mode == "ungrounded" else f"{refused[mode]}/{len(offtopic)}"
        on = "-" if mode == "ungrounded" else f"{falsely_refused[mode]}/{n}"
        secs = sum(r[mode]["seconds"] for r in rows) / n
        chars = sum(len(r[mode]["answer"]) for r in rows) / n  # a longer answer passes the keyword test more easily
        ratio = f" ({k / base:.1f}x)" if base and mode != "ungrounded" else ""
        cells = [f"{k}/{n} = {k / n:.0%}{ratio}", f"{lo:.0%}-{hi:.0%}", cites, off, on, f"{chars:.0f}", f"{secs:.1f}"]
        print(f"| {mode} | " + " | ".join(cells) + " |")
    if args.baseline:
        print(paired(json.loads(args.baseline.read_text(encoding="utf-8"))["rows"], rows, modes))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "offtopic_refused": refused}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
