"""Deterministic checks on a question, pure functions. Each returns ``None`` or a reason a person can read.

Two sets:

* The checks every question must pass (:data:`QUESTION_CHECKS`, :func:`check_question`): the schema already
  guarantees the shape (four options, a key in A-D, bounded strings); these catch what a valid shape can still
  get wrong: identical options, "all of the above", a stem that repeats an earlier one, a key that is always the
  longest option. The agent rejects a draft that fails one.
* The item-writing-flaw rubric lives in :mod:`quizgen.flaws` (the rules of the 19-flaw rubric of Moore et al.,
  EC-TEL 2023, that a rule can catch): a flaw marks a weaker question, not a broken one.

Both run on questions that never went through the schema (an imported quiz, ``Question.model_construct``),
so neither trusts it, and neither depends on the schema's length bounds.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from difflib import SequenceMatcher

from quizgen.schema import EXPLANATION_MAX, LETTERS, OPTION_MAX, REASON_MAX, STEM_MAX, Question

NEAR_DUPLICATE = 0.85  # stems at least this similar (after normalising) count as the same question
LONGEST_SHARE = 0.5  # the key may be the longest option in at most this share of a quiz's questions
LONGEST_MIN_QUESTIONS = 4  # below this many questions a share says nothing
ALL_NONE = re.compile(r"\b(all|none|both|neither) of (the )?(above|these|them|the options)\b|^(a|b|c|d) and (a|b|c|d)$")

Check = Callable[[Question], "str | None"]


def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: how two texts are compared."""
    text = text.lower().translate(str.maketrans(string.punctuation, " " * len(string.punctuation)))
    return " ".join(text.split())


def key_is_valid(q: Question) -> str | None:
    """The key names one of the four options by letter."""
    if q.answer not in LETTERS:
        return f"the answer key {q.answer!r} is not one of the letters A-D"
    return None


def four_options(q: Question) -> str | None:
    """Exactly four options."""
    if len(q.options) != len(LETTERS):
        return f"a question needs exactly 4 options, this one has {len(q.options)}"
    return None


def distinct_options(q: Question) -> str | None:
    """No two options are the same after normalising case, whitespace and punctuation."""
    seen: dict[str, str] = {}
    for letter, option in zip(LETTERS, q.options, strict=False):
        key = normalise(option)
        if key in seen:
            return f"options {seen[key]} and {letter} are the same ({option!r})"
        seen[key] = letter
    return None


def no_all_or_none_of_the_above(q: Question) -> str | None:
    """No "all of the above" / "none of the above" options (they test test-taking, not the topic)."""
    for letter, option in zip(LETTERS, q.options, strict=False):
        if ALL_NONE.search(normalise(option)):
            return f"option {letter} ({option!r}) is an all/none-of-the-above option: write a real answer instead"
    return None


def no_option_equals_stem(q: Question) -> str | None:
    """No option repeats the question."""
    stem = normalise(q.stem)
    for letter, option in zip(LETTERS, q.options, strict=False):
        if normalise(option) == stem:
            return f"option {letter} repeats the question"
    return None


def fields_within_limits(q: Question) -> str | None:
    """Every text field has real content and a sane length."""
    limits = {"stem": (q.stem, 10, STEM_MAX), "explanation": (q.explanation, 10, EXPLANATION_MAX)}
    for letter, option in zip(LETTERS, q.options, strict=False):
        limits[f"option {letter}"] = (option, 1, OPTION_MAX)
    for letter, reason in sorted(q.wrong_reasons.items()):
        limits[f"the reason option {letter} is wrong"] = (reason, 3, REASON_MAX)
    for name, (text, low, high) in limits.items():
        content = normalise(text)
        if len(content) < low:
            return f"{name} is empty or too short ({text!r}): write at least {low} characters of content"
        if len(text) > high:
            return f"{name} is {len(text)} characters long: keep it under {high}"
    return None


def reasons_cover_wrong_options(q: Question) -> str | None:
    """One reason for each wrong option, none for the key."""
    wrong = [letter for letter in LETTERS if letter != q.answer]
    if sorted(q.wrong_reasons) != wrong:
        return f"give one reason for each wrong option ({', '.join(wrong)}), got {sorted(q.wrong_reasons)}"
    return None


QUESTION_WORDS = frozenset("what which who whom whose when where why how".split())


def stem_is_a_question(q: Question) -> str | None:
    """The stem reads as a question or an instruction, not as a bare topic name.

    Three words are a question when they open with a question word and end with "?" ("What is memoization?").
    """
    words = normalise(q.stem).split()
    if len(words) == 3 and words[0] in QUESTION_WORDS and q.stem.rstrip().endswith("?"):
        return None
    if len(words) < 4:
        return f"the stem {q.stem!r} is not a question: ask something in a full sentence"
    return None


def _asks_about_another(a: str, b: str) -> bool:
    """Whether two normalised stems each name a word the other lacks.

    "What is batch normalization?" and "What is layer normalization?" share a template, not a question; a changed
    spelling or punctuation names nothing new.
    """
    words_a = {w for w in a.split() if len(w) >= 3}
    words_b = {w for w in b.split() if len(w) >= 3}
    return bool(words_a - words_b) and bool(words_b - words_a)


def not_a_duplicate(q: Question, earlier: Sequence[Question]) -> str | None:
    """The stem does not near-duplicate an earlier question's stem in the same quiz.

    Stems alike in their characters are one question unless each names something the other does not.
    """
    stem = normalise(q.stem)
    for i, other in enumerate(earlier):
        ratio = SequenceMatcher(None, stem, normalise(other.stem)).ratio()
        if ratio >= NEAR_DUPLICATE and not _asks_about_another(stem, normalise(other.stem)):
            return f"the stem repeats question {i + 1} ({ratio:.0%} the same): ask about something else"
    return None


def key_is_longest(q: Question) -> bool:
    """Whether the correct option is strictly the longest (a cue test-wise students use)."""
    key = len(q.correct_option.strip())
    return all(key > len(o.strip()) for letter, o in zip(LETTERS, q.options, strict=False) if letter != q.answer)


def longest_not_systematic(q: Question, earlier: Sequence[Question]) -> str | None:
    """The key is not the longest option in most of the quiz's questions (this one included)."""
    quiz = [*earlier, q]
    if not key_is_longest(q) or len(quiz) < LONGEST_MIN_QUESTIONS:
        return None
    share = sum(key_is_longest(x) for x in quiz) / len(quiz)
    if share > LONGEST_SHARE:
        return (
            f"the correct option is the longest in {share:.0%} of the questions so far: "
            "make the correct option shorter or the wrong ones as detailed"
        )
    return None


QUESTION_CHECKS: tuple[Check, ...] = (
    key_is_valid,
    four_options,
    fields_within_limits,
    distinct_options,
    no_all_or_none_of_the_above,
    no_option_equals_stem,
    reasons_cover_wrong_options,
    stem_is_a_question,
)


def check_question(q: Question, earlier: Sequence[Question] = ()) -> list[str]:
    """Every check on one question, given the questions already in the quiz; the reasons it fails."""
    issues = []
    for check in QUESTION_CHECKS:
        reason = safe(check, q)
        if reason:
            issues.append(reason)
    if not issues:  # the quiz-level checks need a well-formed question
        for quiz_check in (not_a_duplicate, longest_not_systematic):
            reason = quiz_check(q, earlier)
            if reason:
                issues.append(reason)
    return issues


def check_quiz(questions: Sequence[Question]) -> list[str]:
    """Every check on a whole quiz, each question against the ones before it; reasons prefixed by number."""
    issues = []
    for i, q in enumerate(questions):
        issues.extend(f"question {i + 1}: {reason}" for reason in check_question(q, questions[:i]))
    return issues


def safe(check: Check, q: Question) -> str | None:
    """``check(q)``, where a malformed question (model_construct with a missing field) fails instead of crashing."""
    try:
        return check(q)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
        return f"{check.__name__.replace('_', ' ')}: the question is malformed ({exc})"
