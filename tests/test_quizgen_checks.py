"""quizgen.checks: each bad question is rejected by the right check, good ones pass."""

from __future__ import annotations

import pytest

from quizgen import checks
from quizgen.schema import Question
from tests.quizgen_fixtures import make_question

GOOD = make_question()


def _raw(**changes) -> Question:
    # model_construct skips validation: the checks must catch what the schema would have.
    fields = GOOD.model_dump()
    fields.update(changes)
    return Question.model_construct(**fields)


BAD = [
    ("key not A-D", _raw(answer="E"), checks.key_is_valid, "not one of the letters"),
    ("three options", _raw(options=["x a", "y b", "z c"]), checks.four_options, "exactly 4 options"),
    (
        "identical options after normalising",
        make_question(options=["The size of each update", "the size of each update!", "Layers", "Data"]),
        checks.distinct_options,
        "options A and B are the same",
    ),
    (
        "all of the above",
        make_question(options=["Step size", "Layers", "Data size", "All of the above"]),
        checks.no_all_or_none_of_the_above,
        "option D",
    ),
    (
        "none of these",
        make_question(options=["Step size", "None of these.", "Data size", "Layers"]),
        checks.no_all_or_none_of_the_above,
        "option B",
    ),
    (
        "option equals stem",
        _raw(options=["Step size", "Layers", "What does the learning rate control in gradient descent", "X"]),
        checks.no_option_equals_stem,
        "option C repeats the question",
    ),
    ("empty explanation", _raw(explanation="  ...  "), checks.fields_within_limits, "explanation is empty"),
    ("overlong stem", _raw(stem="why " * 100), checks.fields_within_limits, "stem is 400 characters"),
    ("blank option", _raw(options=["Step size", " ", "Data", "Layers"]), checks.fields_within_limits, "option B"),
    (
        "reason for the key",
        _raw(wrong_reasons={"A": "a reason", "B": "b reason", "C": "c reason"}),
        checks.reasons_cover_wrong_options,
        "B, C, D",
    ),
    ("bare topic as stem", _raw(stem="overfitting"), checks.stem_is_a_question, "not a question"),
]


@pytest.mark.parametrize(("name", "question", "check", "reason"), BAD, ids=[b[0] for b in BAD])
def test_each_bad_question_is_rejected_by_the_right_check(name, question, check, reason) -> None:
    got = check(question)
    assert got is not None and reason in got, f"{name}: {check.__name__} said {got!r}"
    assert reason in " ".join(checks.check_question(question)), "check_question must report it too"


@pytest.mark.parametrize("check", checks.QUESTION_CHECKS, ids=lambda c: c.__name__)
def test_a_good_question_passes_every_check(check) -> None:
    assert check(GOOD) is None


def test_good_question_passes_check_question() -> None:
    assert checks.check_question(GOOD) == []


def test_near_duplicate_stem_is_rejected() -> None:
    again = make_question(stem="What does the learning-rate control in gradient descent??")
    other = make_question(stem="Which sign shows that a learning rate is too large?")
    assert "repeats question 1" in checks.not_a_duplicate(again, [GOOD])
    assert checks.not_a_duplicate(other, [GOOD]) is None
    assert any("repeats question 1" in i for i in checks.check_question(again, [GOOD]))


def test_key_that_is_always_the_longest_is_rejected() -> None:
    long_key = make_question(options=["The size of every single parameter update", "Layers", "Data", "Order"])
    assert checks.key_is_longest(long_key) and not checks.key_is_longest(GOOD)
    earlier = [make_question(stem=f"Question number {i} about steps?", options=long_key.options) for i in range(3)]
    reason = checks.longest_not_systematic(long_key, earlier)
    assert reason is not None and "longest in 100%" in reason
    # Mixed with questions whose key is not the longest, the share is fine.
    assert checks.longest_not_systematic(long_key, [GOOD, GOOD, GOOD]) is None
    # Too few questions say nothing.
    assert checks.longest_not_systematic(long_key, earlier[:1]) is None


def test_malformed_question_is_reported_not_raised() -> None:
    broken = Question.model_construct(stem="What is a loss function?", options=None, answer="A")
    issues = checks.check_question(broken)
    assert issues and any("malformed" in i or "options" in i for i in issues)


def test_check_quiz_numbers_its_reasons() -> None:
    issues = checks.check_quiz([GOOD, make_question(stem=GOOD.stem + "!")])
    assert issues == [issues[0]] and issues[0].startswith("question 2: the stem repeats question 1")


def test_normalise() -> None:
    assert checks.normalise("  The  SIZE, of-each update!! ") == "the size of each update"
