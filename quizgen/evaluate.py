"""The quality report: one quiz per topic, and per quiz and in total the figures that say how good it is.

Every figure is recomputed from the finished quiz, not taken from the agent's own bookkeeping:

* **checks passed**: the deterministic checks (:func:`quizgen.checks.check_question`), run again;
* **acceptable**: at most one item-writing flaw of the rubric (:func:`quizgen.flaws.flaws`, Moore et al. 2023,
  counted as SAQUET counts), with the flaws per question;
* **verified**: the agent's verification agreed with the key (open-book for a grounded question: the model read
  the source; blind for an ungrounded one) and every check passes;
* **key in source** and **explanation quoted**: for a grounded question, the key is found in its source sentence
  and the explanation *is* that sentence; with the knowledge base at hand, the sentence is checked against the
  document's own text at the recorded span (so a source cannot be made up);
* **near-duplicate stems** by meaning (wordllama embeddings, :func:`quizgen.flaws.near_duplicates`);
* **blind right**: how often the model, without the source, picked the key anyway (a difficulty signal).

A question the model wrote alone (``--ungrounded``) has no source: it counts in none of the provenance figures.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quizgen import checks, flaws
from quizgen.request import QuizRequest
from quizgen.schema import Question, Quiz

COUNTS = (
    "questions",
    "requested",
    "grounded",
    "checks_passed",
    "acceptable",
    "flaws",
    "verified",
    "key_in_source",
    "explanation_quoted",
    "duplicate_stems",
    "blind_right",
)


@dataclass
class QuizReport:
    """The figures for one quiz (or, summed, for all of them)."""

    topic: str
    questions: int = 0
    requested: int = 0  # questions asked for (a grounded quiz holds fewer when its course material runs out)
    grounded: int = 0  # questions whose key and explanation come from course text (they carry a source)
    checks_passed: int = 0  # questions that pass every deterministic check
    acceptable: int = 0  # questions with at most one item-writing flaw
    flaws: int = 0  # item-writing flaws, summed
    verified: int = 0  # the agent's verification agreed with the key, and every check passes
    key_in_source: int = 0  # grounded questions whose key is found in the quoted source sentence
    explanation_quoted: int = 0  # grounded questions whose explanation is the source sentence, verbatim
    duplicate_stems: int = 0  # questions whose stem asks what an earlier one asked (by meaning)
    blind_right: int = 0  # questions the model answered right without the source
    seconds: float = 0.0
    crashes: int = 0  # quizzes that raised instead of finishing
    errors: list[str] = field(default_factory=list)

    def pct(self, count: int, of: int | None = None) -> str:
        """``count`` as a share of ``of`` (default: the questions)."""
        whole = self.questions if of is None else of
        return f"{100 * count / whole:.0f}%" if whole else "-"

    def row(self) -> str:
        """This report as a markdown table row."""
        per_question = f"{self.seconds / self.questions:.1f}" if self.questions else "-"
        flaws_per_q = f"{self.flaws / self.questions:.2f}" if self.questions else "-"
        return (
            f"| {self.topic} | {self.questions}/{self.requested} | {self.pct(self.grounded)} "
            f"| {self.pct(self.checks_passed)} | {self.pct(self.verified)} "
            f"| {self.pct(self.acceptable)} | {flaws_per_q} "
            f"| {self.pct(self.key_in_source, self.grounded)} | {self.pct(self.explanation_quoted, self.grounded)} "
            f"| {self.pct(self.duplicate_stems)} | {self.pct(self.blind_right)} | {per_question} | {self.crashes} |"
        )


HEADER = (
    "| topic | questions/asked | grounded | checks passed | verified | acceptable | flaws/q | key in source "
    "| explanation quoted | near-duplicate stems | blind right | s/question | crashes |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def quoted(q: Question, document_text: Callable[[str, str], str] | None = None) -> tuple[bool, bool]:
    """(key found in the source sentence, explanation is the source sentence) for a grounded question.

    With ``document_text(kb, doc)``, the sentence must also stand in the document at the recorded span.
    """
    if q.source is None:
        return False, False
    real = document_text is None or document_text(q.source.kb, q.source.doc)[q.source.start : q.source.end] == (
        q.source.quote
    )
    key = checks.normalise(q.correct_option) in checks.normalise(q.source.quote)
    return key and real, q.explanation == q.source.quote and real


def score_quiz(
    quiz: Quiz, seconds: float, requested: int | None = None, document_text: Callable[[str, str], str] | None = None
) -> QuizReport:
    """The figures for one finished quiz."""
    report = QuizReport(topic=quiz.topic, questions=len(quiz.questions), seconds=seconds)
    report.requested = requested if requested is not None else quiz.metadata.extra.get("requested", len(quiz))
    earlier: list[Question] = []
    for item in quiz.questions:
        q = item.question
        issues = checks.check_question(q, earlier)
        found = flaws.flaws(q)
        report.checks_passed += not issues
        report.flaws += len(found)
        report.acceptable += len(found) <= flaws.ACCEPTABLE_FLAWS
        report.verified += item.verified and not issues
        report.grounded += q.source is not None
        key, explanation = quoted(q, document_text)
        report.key_in_source += key
        report.explanation_quoted += explanation
        report.blind_right += item.blind_answer == q.answer
        earlier.append(q)
    report.duplicate_stems = len({j for _, j, _ in flaws.near_duplicates([q.stem for q in earlier])})
    return report


def total(reports: Iterable[QuizReport]) -> QuizReport:
    """All reports summed."""
    out = QuizReport(topic="**total**")
    for r in reports:
        for name in COUNTS:
            setattr(out, name, getattr(out, name) + getattr(r, name))
        out.seconds += r.seconds
        out.crashes += r.crashes
        out.errors.extend(r.errors)
    return out


def evaluate(
    make_quiz: Callable[[QuizRequest], Quiz],
    requests: Iterable[QuizRequest],
    on_report: Callable[[QuizReport], None] | None = None,
    document_text: Callable[[str, str], Any] | None = None,
) -> list[QuizReport]:
    """One quiz per request through ``make_quiz``; a quiz that raises counts as a crash and the run goes on.

    Catching everything is the point here: the report counts crashes (with their traceback in ``errors``)
    rather than losing the quizzes already written to the first one.
    """
    reports = []
    for request in requests:
        started = time.perf_counter()
        try:
            quiz = make_quiz(request)
            report = score_quiz(quiz, time.perf_counter() - started, request.n, document_text)
        except Exception as exc:
            report = QuizReport(
                topic=request.topic, requested=request.n, seconds=time.perf_counter() - started, crashes=1
            )
            report.errors.append(f"{request.topic}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
        reports.append(report)
        if on_report:
            on_report(report)
    return reports


def markdown(reports: list[QuizReport]) -> str:
    """The per-quiz table with a total row."""
    rows = [r.row() for r in reports]
    return "\n".join([HEADER, *rows, total(reports).row()])


def read_topics(path: Path) -> list[str]:
    """Topics from a file, one per line; blank lines and ``#`` comments are skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def as_dicts(reports: list[QuizReport]) -> list[dict]:
    """Reports as plain dicts (for a JSON file)."""
    return [asdict(r) for r in [*reports, total(reports)]]
