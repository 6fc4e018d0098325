"""The quality report: one quiz per topic, and per quiz and in total the figures that say how good it is.

Every figure is recomputed from the finished quiz, not taken from the agent's own bookkeeping: the
schema is checked with ``jsonschema`` against :class:`~quizgen.schema.Question`'s JSON schema, and the
checks are run again.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from quizgen import checks
from quizgen.request import QuizRequest
from quizgen.schema import Question, Quiz


@dataclass
class QuizReport:
    """The figures for one quiz (or, summed, for all of them)."""

    topic: str
    questions: int = 0
    schema_valid: int = 0  # questions whose JSON validates against the Question schema
    checks_passed: int = 0  # questions that pass every deterministic check
    passed_or_flagged: int = 0  # questions that pass every check, or are flagged unverified with their issues
    verified: int = 0  # questions that pass every check AND the model's blind answer agrees with the key
    duplicate_stems: int = 0  # questions whose stem near-duplicates an earlier one in the quiz
    attempts: int = 0  # drafts written, summed
    seconds: float = 0.0
    crashes: int = 0  # quizzes that raised instead of finishing
    errors: list[str] = field(default_factory=list)

    def pct(self, count: int) -> str:
        """``count`` as a share of the questions."""
        return f"{100 * count / self.questions:.0f}%" if self.questions else "-"

    def row(self) -> str:
        """This report as a markdown table row."""
        mean_attempts = f"{self.attempts / self.questions:.2f}" if self.questions else "-"
        per_question = f"{self.seconds / self.questions:.1f}" if self.questions else "-"
        return (
            f"| {self.topic} | {self.questions} | {self.pct(self.schema_valid)} | {self.pct(self.checks_passed)} "
            f"| {self.pct(self.passed_or_flagged)} | {self.pct(self.verified)} | {self.duplicate_stems} "
            f"| {mean_attempts} | {per_question} | {self.crashes} |"
        )


HEADER = (
    "| topic | questions | schema-valid | checks passed | passed or flagged | self-verified | duplicate stems "
    "| mean attempts | s/question | crashes |\n|---|---|---|---|---|---|---|---|---|---|"
)


def score_quiz(quiz: Quiz, seconds: float) -> QuizReport:
    """The figures for one finished quiz."""
    import jsonschema

    schema = Question.model_json_schema()
    report = QuizReport(topic=quiz.topic, questions=len(quiz.questions), seconds=seconds)
    earlier: list[Question] = []
    for item in quiz.questions:
        q = item.question
        if not list(jsonschema.Draft202012Validator(schema).iter_errors(q.model_dump(mode="json"))):
            report.schema_valid += 1
        issues = checks.check_question(q, earlier)
        report.checks_passed += not issues
        report.passed_or_flagged += (not issues) or (not item.verified and bool(item.issues))
        report.verified += item.verified and not issues
        report.duplicate_stems += checks.not_a_duplicate(q, earlier) is not None
        report.attempts += item.attempts
        earlier.append(q)
    return report


def total(reports: Iterable[QuizReport]) -> QuizReport:
    """All reports summed."""
    out = QuizReport(topic="**total**")
    for r in reports:
        for name in ("questions", "schema_valid", "checks_passed", "passed_or_flagged", "verified"):
            setattr(out, name, getattr(out, name) + getattr(r, name))
        out.duplicate_stems += r.duplicate_stems
        out.attempts += r.attempts
        out.seconds += r.seconds
        out.crashes += r.crashes
        out.errors.extend(r.errors)
    return out


def evaluate(
    make_quiz: Callable[[QuizRequest], Quiz],
    requests: Iterable[QuizRequest],
    on_report: Callable[[QuizReport], None] | None = None,
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
            report = score_quiz(quiz, time.perf_counter() - started)
        except Exception as exc:
            report = QuizReport(topic=request.topic, seconds=time.perf_counter() - started, crashes=1)
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
