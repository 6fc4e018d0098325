"""quizgen.checks: each bad question is rejected by the right check, good ones pass."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from quizgen import checks, embed, flaws
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


# --- The item-writing-flaw rubric ------------------------------------------------------------------------------


def _q(**changes) -> Question:
    # Validated like a real question; the wrong reasons follow the key so any answer letter works.
    answer = changes.get("answer", "A")
    reasons = {letter: f"Reason {letter} is wrong." for letter in "ABCD" if letter != answer}
    return make_question(wrong_reasons=reasons, **changes)


FLAWED = [
    ("ambiguous or unclear information", flaws.ambiguous_or_unclear, _q(stem="What is the answer to this question?")),
    (
        "implausible distractors",
        flaws.implausible_distractors,
        _q(options=["The size of each update", "The number of layers", "}, {", "The dataset size"]),
    ),
    (
        "implausible distractors",
        flaws.implausible_distractors,
        _q(options=["The size of each update", "difficulty:medium,", "The number of layers", "The dataset size"]),
    ),
    (
        "implausible distractors",
        flaws.implausible_distractors,
        _q(stem="How many output units does a 10-class softmax layer have?", options=["10", "1", "Dropout", "100"]),
    ),
    (
        "none of the above",
        flaws.none_of_the_above,
        _q(options=["The size of each update", "The number of layers", "The dataset", "None of the above"]),
    ),
    (
        "longest option correct",
        flaws.longest_option_correct,
        _q(
            options=[
                "How far each step moves the weights along the gradient",
                "Layers",
                "Dataset size",
                "Example order",
            ]
        ),
    ),
    ("true/false question", flaws.true_false_question, _q(options=["True", "False", "Sometimes", "Never"])),
    (
        "true/false question",
        flaws.true_false_question,
        _q(stem="Which of the following statements about the learning rate is true?"),
    ),
    (
        "convergence cues",
        flaws.convergence_cues,
        _q(
            stem="Where does this network apply its strongest regularisation?",
            options=[
                "Weight decay on the output layer",
                "Weight decay on the input layer",
                "Dropout on the output layer",
                "Noise on the hidden units",
            ],
        ),
    ),
    (
        "all of the above",
        flaws.all_of_the_above,
        _q(options=["The size of each update", "The number of layers", "The dataset", "All of these"]),
    ),
    (
        "fill-in-the-blank",
        flaws.fill_in_the_blank,
        _q(stem="In gradient descent, the ____ sets the size of each update step."),
    ),
    (
        "absolute terms",
        flaws.absolute_terms,
        _q(options=["The size of each update", "Always the number of layers", "The dataset size", "The order"]),
    ),
    (
        "word repeats",
        flaws.word_repeats,
        _q(stem="Which update quantity does the learning rate set in gradient descent?"),
    ),
    ("unfocused stem", flaws.unfocused_stem, _q(stem="The learning rate in gradient descent is a hyperparameter.")),
    ("unfocused stem", flaws.unfocused_stem, _q(stem="Gradient descent")),
    (
        "complex or K-type",
        flaws.complex_or_k_type,
        _q(options=["The size of each update", "The number of layers", "The dataset size", "A and B"]),
    ),
    (
        "complex or K-type",
        flaws.complex_or_k_type,
        _q(options=["The size of each update", "The number of layers", "The dataset size", "Both I and III"]),
    ),
    (
        "grammatical cues",
        flaws.grammatical_cues,
        _q(
            stem="Dropout, which zeroes random activations during training, is an example of a",
            options=["regularizer", "optimizer", "loss function", "learning rate schedule"],
        ),
    ),
    (
        "grammatical cues",
        flaws.grammatical_cues,
        _q(
            stem="In a neural network, dropout and weight decay are",
            options=["regularizers", "an optimizer", "loss functions", "activation functions"],
        ),
    ),
    (
        "lost sequence",
        flaws.lost_sequence,
        _q(stem="How many output units does a 10-class softmax layer have?", options=["10", "2", "100", "1"]),
    ),
    (
        "vague terms",
        flaws.vague_terms,
        _q(options=["The size of each update", "Usually the number of layers", "The dataset size", "The order"]),
    ),
    (
        "more than one correct",
        flaws.more_than_one_correct,
        _q(options=["The size of each update", "The size of each update and the layers", "The data", "The order"]),
    ),
    (
        "negative worded stem",
        flaws.negative_worded_stem,
        _q(stem="Which of these does the learning rate not control in gradient descent?"),
    ),
    (
        "negative worded stem",
        flaws.negative_worded_stem,
        _q(stem="What doesn't the learning rate control in gradient descent?"),
    ),
]


@pytest.mark.parametrize(("rule", "check", "question"), FLAWED, ids=[f[0] for f in FLAWED])
def test_each_flaw_is_found_by_its_rule(rule, check, question) -> None:
    reason = check(question)
    assert reason, f"{check.__name__} missed {question.stem!r} {question.options}"
    found = flaws.flaws(question)
    assert rule in [f.rule for f in found], f"flaws() must report {rule!r}, got {[str(f) for f in found]}"


@pytest.mark.parametrize(("name", "rule"), flaws.RUBRIC, ids=[name for name, _ in flaws.RUBRIC])
def test_a_good_question_has_no_flaw(name, rule) -> None:
    assert rule(GOOD) is None, f"{name}: {rule(GOOD)}"


CLEAN = [  # one near-miss per rule: looks like the flaw, is not
    (
        "a month, not a hedge",
        _q(stem="In which month is the northern summer solstice?", options=["June", "May", "July", "December"]),
    ),
    (
        "a plain question",
        _q(stem="What is overfitting?", options=["Fitting noise", "Slow training", "Small data", "Low bias"]),
    ),
    (
        "options that combine the same words differently",
        _q(
            stem="How do the mass and weight of a ball change when it is moved to the Moon?",
            options=[
                "Same mass, different weight",
                "Same weight, different mass",
                "Both change by the same amount",
                "Neither one changes on the Moon",
            ],
        ),
    ),
    (
        "a number with a unit among words",
        _q(
            stem="How long does training a large language model from scratch usually take?",
            options=["Weeks of compute", "1 second", "A few milliseconds", "Half a minute"],
        ),
    ),
    ("marked negative in capitals", _q(stem="Which of these does the learning rate NOT control in gradient descent?")),
    ("marked negative in bold", _q(stem="Which of these does the learning rate **not** control in gradient descent?")),
    ("blank at the end", _q(stem="In gradient descent, the learning rate scales the ____.")),
    ("completion without a blank", _q(stem="In gradient descent, the learning rate sets")),
    ("a task, not a question", _q(stem="Name the quantity the learning rate sets in gradient descent.")),
    (
        "numbers in order",
        _q(stem="How many output units does a 10-class softmax have?", options=["1", "2", "10", "100"]),
    ),
    (
        "numbers descending",
        _q(stem="How many output units does a 10-class softmax have?", options=["100", "10", "2", "1"]),
    ),
    (
        "absolute term in the key",
        _q(
            options=[
                "Always the size of each update",
                "The number of layers in the net",
                "The size of the training dataset",
                "The order of the examples",
            ]
        ),
    ),
    (
        "a stem word the wrong options share too",
        _q(stem="Which size does the learning rate set in gradient descent?"),
    ),
    (
        "article that every option fits",
        _q(
            stem="Dropout, which zeroes random activations during training, is an example of a",
            options=["regularizer", "loss function", "learning rate schedule", "normalization layer"],
        ),
    ),
    (
        "an before vowel sounds and acronyms",
        _q(
            stem="The average of squared differences between predictions and targets is an",
            options=["error measure", "MSE loss", "outcome metric", "L2 norm"],
        ),
    ),
    (
        "key longer by 33% but one character",
        _q(
            stem="Which optimizer keeps running averages of gradients and their squares?",
            options=["Adam", "SGD", "GD", "BGD"],
        ),
    ),
]


@pytest.mark.parametrize(("name", "question"), CLEAN, ids=[c[0] for c in CLEAN])
def test_near_misses_are_not_flaws(name, question) -> None:
    assert flaws.flaws(question) == [], f"{name}: {[str(f) for f in flaws.flaws(question)]}"


def test_acceptable_is_at_most_one_flaw() -> None:
    one = _q(options=["The size of each update", "Usually the number of layers", "The dataset size", "The order"])
    two = _q(
        stem="Which of these does the learning rate not control in gradient descent?",
        options=["The size of each update", "Usually the number of layers", "The dataset size", "The order"],
    )
    assert flaws.is_acceptable(GOOD) and flaws.is_acceptable(one)
    assert len(flaws.flaws(two)) == 2 and not flaws.is_acceptable(two)
    assert str(flaws.flaws(one)[0]).startswith("vague terms: option B")


def test_malformed_question_is_a_flaw_not_a_crash() -> None:
    broken = Question.model_construct(stem="What is a loss function?", options=None, answer="A")
    assert any("malformed" in f.reason for f in flaws.flaws(broken))


def test_rubric_names_are_the_papers() -> None:
    assert len(flaws.RUBRIC) == 17 and len({name for name, _ in flaws.RUBRIC}) == 17
    names = dict(flaws.RUBRIC)
    assert {"word repeats", "longest option correct", "implausible distractors", "lost sequence"} <= names.keys()


def test_markup_among_markup_is_not_debris() -> None:
    code = _q(
        stem="Which slice of a Python list x drops its first element?",
        options=["x[1:]", "x[:-1]", "x[0]", "x[-1]"],
    )
    assert flaws.implausible_distractors(code) is None


# --- Embeddings, on real text ------------------------------------------------------------------------------------

QUIZ_STEMS = [
    "What does the learning rate control in gradient descent?",
    "Which sign shows that a learning rate is too large?",
    "In gradient descent, what is controlled by the learning rate?",  # 0 reworded
    "Which metric is the harmonic mean of precision and recall?",
    "What does recall measure?",
    "What metric combines precision and recall as their harmonic mean?",  # 3 reworded
    "What is overfitting?",
    "What is underfitting?",  # same template, another question
    "Which regularization adds the sum of absolute weights to the loss?",
    "Which regularization adds the sum of squared weights to the loss?",  # one word apart, another question
]


def test_near_duplicates_finds_reworded_stems_only() -> None:
    pairs = flaws.near_duplicates(QUIZ_STEMS)
    assert [(i, j) for i, j, _ in pairs] == [(0, 2), (3, 5)], pairs
    assert all(flaws.NEAR_DUPLICATE_EMBEDDING <= s <= 1.0 + 1e-6 for _, _, s in pairs)
    assert flaws.near_duplicates(QUIZ_STEMS, threshold=1.01) == [] and flaws.near_duplicates(QUIZ_STEMS[:1]) == []


def test_near_duplicates_on_a_real_question_bank(data_dir) -> None:
    rows = (data_dir / "openbookqa" / "openbookqa_test.jsonl").read_text().splitlines()
    stems = [json.loads(row)["question"]["stem"] for row in rows]
    pairs = {(stems[i], stems[j]) for i, j, _ in flaws.near_duplicates(stems)}
    assert ("What do tuna eat?", "Tuna primarily eat") in pairs or ("Tuna primarily eat", "What do tuna eat?") in pairs
    assert len(pairs) <= 15, f"{len(pairs)} of {len(stems) * (len(stems) - 1) // 2} pairs flagged: threshold too low"


def test_embed_gives_unit_rows_and_meaningful_similarity() -> None:
    vectors = embed.embed(
        ["What does a confusion matrix show?", "What information is shown by a confusion matrix?", ""]
    )
    assert vectors.shape == (3, vectors.shape[1]) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-5)
    assert not vectors[2].any(), "a text with no token is similar to nothing (no NaN)"
    same = embed.similarity("What does a confusion matrix show?", "What information is shown by a confusion matrix?")
    other = embed.similarity("What does a confusion matrix show?", "Why do we shuffle examples between epochs?")
    assert same > 0.7 > 0.3 > other, (same, other)
    assert embed.embed([]).shape == (0, vectors.shape[1])
    with pytest.raises(TypeError, match="list of texts"):
        embed.embed("one text")


def test_importing_quizgen_does_not_load_wordllama() -> None:
    code = "import sys, quizgen, quizgen.checks, quizgen.embed; print('wordllama' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_the_junk_issue_13_reports_is_not_acceptable() -> None:
    # A question the ungrounded writer really produced on the topic "dropout" (issue 13).
    junk = _q(
        stem="What is the topic of this question?",
        options=[
            "}, None}. You must write a single-choice question.",
            "{topic} (only one option) cannot be edited without",
            "target_field:",
            "] }, `difficulty`: [1,2], `source`:None }. Please!",
        ],
    )
    assert "names nothing specific" in flaws.ambiguous_or_unclear(junk)
    assert not flaws.is_acceptable(junk), [str(f) for f in flaws.flaws(junk)]
    clean_stem = junk.model_copy(update={"stem": "Which technique randomly zeroes activations during training?"})
    assert "option A holds template or schema text ('None}')" in flaws.ambiguous_or_unclear(clean_stem)


def test_a_three_word_question_is_a_question() -> None:
    assert checks.stem_is_a_question(make_question(stem="What is memoization?")) is None
    assert "not a question" in checks.stem_is_a_question(make_question(stem="Memoization and caching"))


def test_one_template_about_two_terms_is_two_questions() -> None:
    first = make_question(stem="What is batch normalization?")
    assert checks.not_a_duplicate(make_question(stem="What is layer normalization?"), [first]) is None
    assert "repeats question 1" in checks.not_a_duplicate(make_question(stem="What is batch-normalization??"), [first])
