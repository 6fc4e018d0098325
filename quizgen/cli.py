"""``ta quiz`` (write, export or take a quiz) and ``ta quiz-eval`` (the quality report).

Input is checked before the model loads, so a bad topic, N or source file fails in a second with a
message saying what to pass instead. ``--format json`` prints exactly one JSON document on stdout;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quizgen.request import DEFAULT_QUESTIONS, DEFAULT_TEMPERATURE, MAX_QUESTIONS, QuizRequest
from quizgen.schema import DIFFICULTIES, LETTERS, QuizItem
from tutor.cli import CLIError, add_model_args, load_from_args

FORMATS = ("json", "gift", "qti", "anki", "text")


def register(sub: Any) -> None:
    """Add ``quiz`` and ``quiz-eval`` to ``ta``."""
    p = sub.add_parser("quiz", help="write a checked multiple-choice quiz on a topic (or take it with --take)")
    p.add_argument("topic", nargs="+", help="what the quiz is about")
    n_help = f"how many questions (1-{MAX_QUESTIONS})"
    p.add_argument("-n", "--questions", type=int, default=DEFAULT_QUESTIONS, dest="n", help=n_help)
    p.add_argument("--difficulty", choices=DIFFICULTIES, default="medium")
    _add_grounding_args(p)
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the quiz here instead of stdout")
    p.add_argument("--seed", type=int, help="repeatable quiz (same model, backend and machine)")
    p.add_argument(
        "--temperature", type=float, default=DEFAULT_TEMPERATURE, help="sampling temperature for writing (0 to 2)"
    )
    p.add_argument("--max-attempts", type=int, default=3, help="drafts per question at most")
    _add_program_arg(p)
    p.add_argument("--take", action="store_true", help="take the quiz in the terminal, with feedback")
    add_model_args(p)
    p.set_defaults(func=cmd_quiz)

    p = sub.add_parser("quiz-eval", help="quality report: one quiz per topic in a file")
    p.add_argument("--topics", type=Path, required=True, metavar="FILE", help="one topic per line")
    p.add_argument("-n", "--questions", type=int, default=DEFAULT_QUESTIONS, dest="n", help="questions per quiz")
    p.add_argument("--difficulty", choices=DIFFICULTIES, default="medium")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="only the first LIMIT topics")
    _add_program_arg(p)
    _add_grounding_args(p)
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="also write the figures and quizzes as JSON")
    add_model_args(p)
    p.set_defaults(func=cmd_quiz_eval)


def _add_program_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--program",
        type=Path,
        metavar="FILE",
        help="a quiz program written by `ta optimize quiz` (its demos and instructions; a grounded quiz uses only "
        "its blind answer)",
    )


def make_agent(args: argparse.Namespace, kb: Any, **options: Any) -> Any:
    """The quiz agent the arguments ask for, with ``--program`` loaded (a bad file fails before the model loads)."""
    from quizgen.program import QuizAgent

    if args.program is not None:
        from tutor.optimize import read_program_file

        read_program_file(args.program, "quiz")
    agent = QuizAgent(load_from_args(args), kb=kb, **options)
    if args.program is not None:
        from tutor.optimize import load_program

        load_program(args.program, agent.model, "quiz", agent)
    return agent


def _add_grounding_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kb", metavar="NAME", help="the knowledge base to write from (default: the starter course)")
    p.add_argument(
        "--source", type=Path, metavar="FILE", help="your notes or a chapter (md, rst, txt, pdf) to write from"
    )
    p.add_argument(
        "--ungrounded",
        action="store_true",
        help="let the model write the questions alone, without course text (marked ungrounded; a 135M model "
        "writes poor questions this way)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="questions checked by the model at once (grounded; default: 1 on a local model, whose CPU does not batch "
        "prompts; a server's concurrency)",
    )


def grounding(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The request fields and the knowledge base the arguments ask for (checked before the model loads).

    A grounded ``--source`` file is indexed as a temporary knowledge base of its own (its format kept: a PDF or
    reStructuredText keeps its headings); an ungrounded one reaches the writer as plain text.
    """
    if args.ungrounded:
        if args.kb:
            raise CLIError("--kb grounds the quiz in a knowledge base: leave out --ungrounded, or --kb")
        return {"grounded": False, "source_text": read_source(args.source), "parallel": args.parallel}, None
    from tutor.knowledge import COURSE, KnowledgeBase, open_kb

    if args.source is not None:
        if args.kb:
            raise CLIError("pass either --kb NAME or --source FILE, not both")
        import tempfile

        kb = KnowledgeBase.create("source", path=Path(tempfile.mkdtemp(prefix="ta-source-")) / "source.db")
        kb.add([args.source])  # KnowledgeError names the file and what is wrong with it
        return {"grounded": True, "parallel": args.parallel}, kb
    return {"grounded": True, "kb": args.kb, "parallel": args.parallel}, open_kb(args.kb or COURSE)


def read_source(path: Path | None) -> str | None:
    """The text of ``--source``, or a CLIError saying what is wrong with the file."""
    if path is None:
        return None
    if not path.is_file():
        raise CLIError(f"no file at {path}: pass --source PATH to a plain-text file with your notes")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise CLIError(f"{path} is a binary file: pass --source a plain-text file (.txt or .md)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path} is not UTF-8 text ({exc.reason}): save it as UTF-8 plain text") from exc
    if not text.strip():
        raise CLIError(f"{path} is empty: pass a file with your notes, or leave --source out")
    return text


def cmd_quiz(args: argparse.Namespace) -> int:
    """Write the quiz, show progress on stderr, then print/save it or let the user take it."""
    import time

    fields, kb = grounding(args)
    request = QuizRequest(
        " ".join(args.topic),
        n=args.n,
        difficulty=args.difficulty,
        seed=args.seed,
        temperature=args.temperature,
        **fields,
    )  # checked here, before the model loads
    if args.max_attempts < 1:
        raise CLIError(f"--max-attempts must be at least 1, got {args.max_attempts}")
    if args.format == "qti" and args.output is None and not args.take:
        raise CLIError("QTI is a zip file: pass -o quiz.zip")
    if kb is not None:  # a topic the knowledge base does not cover fails now, before the model loads
        from quizgen.grounded import search_topic

        search_topic(kb, request.topic)
    agent = make_agent(args, kb, max_attempts=args.max_attempts)
    if args.take:
        return take(agent, request, output=args.output, fmt=args.format)
    items = []
    started = time.perf_counter()
    for i, item in enumerate(agent.stream(request), 1):
        items.append(item)
        _progress(i, request.n, item)
    quiz = agent.assemble(request, items, seconds=time.perf_counter() - started)
    print(f"{quiz.verified_count}/{len(quiz)} verified in {quiz.metadata.seconds:.1f} s", file=sys.stderr)
    if request.grounded and len(quiz) < request.n:
        print(
            f"the course material on {request.topic!r} supports {len(quiz)} of the {request.n} questions asked for: "
            "add notes on it (ta kb add NAME FILES...) for more",
            file=sys.stderr,
        )
    _write(quiz, args.format, args.output)
    return 0


def _progress(i: int, n: int, item: QuizItem) -> None:
    status = "verified" if item.verified else "FLAGGED"
    print(
        f"[{i}/{n}] {status} after {item.attempts} attempt(s), {item.seconds:.1f} s: {item.question.stem[:70]}",
        file=sys.stderr,
        flush=True,
    )
    for issue in item.issues:
        print(f"        - {issue}", file=sys.stderr)


def _write(quiz: Any, fmt: str, output: Path | None) -> None:
    from quizgen.export import dumps

    data = dumps(quiz, fmt)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            output.write_bytes(data)
        else:
            output.write_text(data, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    elif isinstance(data, bytes):
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data if data.endswith("\n") else data + "\n")
        sys.stdout.flush()


def take(agent: Any, request: QuizRequest, output: Path | None, fmt: str) -> int:
    """Ask each question as soon as it is written; feedback after each answer; the score at the end."""
    import time

    from quizgen.grade import QuizSession, feedback_text

    print(f"Quiz on {request.topic}: answer with A, B, C or D (q quits).\n")
    started = time.perf_counter()
    session = QuizSession(agent.assemble(request, []), requested=request.n)
    for i, item in enumerate(session.fill(agent.stream(request))):
        print(_render(i, item))
        letter = ask_letter()
        if letter is None:
            break
        print(feedback_text(session.answer(i, letter), item.question))
    print(f"Score: {session.summary()}")
    if output is not None:  # the questions written so far, with metadata on how they were made
        _write(agent.assemble(request, session.quiz.questions, time.perf_counter() - started), fmt, output)
    return 0


def _render(i: int, item: QuizItem) -> str:
    q = item.question
    note = "" if item.verified else "  (unverified: the checker could not confirm this question)"
    lines = [f"{i + 1}. {q.stem}{note}"]
    lines.extend(f"   {letter}. {option}" for letter, option in zip(LETTERS, q.options, strict=True))
    return "\n".join(lines)


def ask_letter(letters: Sequence[str] = LETTERS) -> str | None:
    """Read an answer letter from the terminal; None when the user quits (q, or end of input)."""
    while True:
        try:
            answer = input("Your answer: ").strip().upper()
        except EOFError:
            print()
            return None
        if answer in ("Q", "QUIT"):
            return None
        if answer in letters:
            return answer
        print("Please answer A, B, C or D (or q to quit).")


def cmd_quiz_eval(args: argparse.Namespace) -> int:
    """One quiz per topic; print the table (per quiz and total) on stdout, progress on stderr."""
    from quizgen import evaluate

    if not args.topics.is_file():
        raise CLIError(f"no topics file at {args.topics}: pass --topics FILE with one topic per line")
    topics = evaluate.read_topics(args.topics)
    if args.limit is not None:
        topics = topics[: max(args.limit, 0)]
    if not topics:
        raise CLIError(f"{args.topics} names no topics: write one topic per line")
    # Every request is checked before the model loads: a bad line fails the run now, not an hour in.
    fields, kb = grounding(args)
    requests = [QuizRequest(topic, n=args.n, difficulty=args.difficulty, seed=args.seed, **fields) for topic in topics]
    agent = make_agent(args, kb)
    quizzes = []

    def make_quiz(request: QuizRequest) -> Any:
        quiz = agent.run(request)
        quizzes.append(quiz)
        return quiz

    def on_report(report: evaluate.QuizReport) -> None:
        print(report.row(), file=sys.stderr, flush=True)

    def document_text(kb_name: str, doc: str) -> str:  # a quoted source is checked against the document itself
        from tutor.knowledge import open_kb

        return (kb if kb is not None and kb.name == kb_name else open_kb(kb_name)).document_text(doc)

    reports = evaluate.evaluate(make_quiz, requests, on_report=on_report, document_text=document_text)
    print(evaluate.markdown(reports))
    if args.output is not None:
        payload = {"reports": evaluate.as_dicts(reports), "quizzes": [q.model_dump(mode="json") for q in quizzes]}
        args.output.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
