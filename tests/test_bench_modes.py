"""Scoring-mode logic on FakeModel (the real-model runs are in test_bench_real.py)."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from benchmarks.errors import BenchError
from benchmarks.modes import MODES, cot, cot_schema, extract_letter, freeform, get_mode, letter, letter_raw, loglik
from benchmarks.tasks.common import MCQuestion, render_mc, render_mc_raw
from tutor.models import ConstraintViolation, FakeModel

Q1 = MCQuestion("q1", "Which is a gas?", ("ice", "steam", "rock", "wood"), (1,), "Question: Which is a gas?\nAnswer:")
Q2 = MCQuestion("q2", "Pick the long one", ("tiny", "a very long answer indeed"), (1,), "Q:")
MULTI = MCQuestion("m", "Which are true?", ("yes", "also yes", "no"), (0, 1), "Q:")


def test_letter_reads_the_favoured_letter_and_keeps_probabilities() -> None:
    assert len(render_mc(Q1)) < len(render_mc(Q2))
    fake = FakeModel().enqueue_choice("B", "A")
    preds = letter(fake, [Q2, Q1])  # Q1's prompt is shorter: asked first, its answer mapped back
    p1, p2 = preds[1], preds[0]
    assert (p1.id, p1.prediction, p1.correct, p1.score) == ("q1", "B", True, 1.0)
    assert (p2.id, p2.prediction, p2.correct) == ("q2", "A", False)
    assert set(p1.scores) == {"A", "B", "C", "D"} and abs(sum(p1.scores.values()) - 1) < 1e-9


def test_letter_mass_scoring_sums_gold_probabilities() -> None:
    pred = letter(FakeModel().enqueue_choice("C"), [MULTI], mass=True)[0]
    assert pred.prediction == "C" and not pred.correct
    assert pred.score == pytest.approx(pred.scores["A"] + pred.scores["B"])
    assert 0 < pred.score < 0.01


def test_letter_raw_scores_spaced_letters_on_raw_text() -> None:
    assert render_mc_raw(Q1) == "Question: Which is a gas?\nA. ice\nB. steam\nC. rock\nD. wood\nAnswer:"
    # FakeModel tokenises by character: " A" is two tokens, so choose falls back to whole-choice
    # log-likelihoods (all equal here): the first letter wins, reported bare, scores keyed by letter.
    pred = letter_raw(FakeModel(), [Q1])[0]
    assert (pred.prediction, pred.correct, pred.parsed) == ("A", False, True)
    assert pred.scores == pytest.approx({"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25})
    with pytest.raises(ValueError, match="pass each prompt as a string"):
        FakeModel().choose([[{"role": "user", "content": "Which?"}]], ["A", "B"], chat=False)


def test_cot_answer_is_constrained_to_the_letters() -> None:
    fake = FakeModel([{"reasoning": "Steam is water vapour.", "answer": "B"}])
    pred = cot(fake, [Q1])[0]
    assert pred.prediction == "B" and pred.correct and pred.parsed
    assert pred.extra["reasoning"] == "Steam is water vapour."
    schema = fake.calls[0][1].schema
    assert schema["properties"]["answer"]["enum"] == ["A", "B", "C", "D"]
    assert list(schema["properties"]) == ["reasoning", "answer"], "reasoning must be generated first"
    with pytest.raises(ConstraintViolation):
        cot(FakeModel([{"reasoning": "x", "answer": "E"}] * 2), [Q1])


def test_cot_schema_bounds_reasoning() -> None:
    assert cot_schema(["A", "B"])["properties"]["reasoning"]["maxLength"] > 0


def test_loglik_acc_and_acc_norm() -> None:
    # FakeModel scores -len(continuation): the shortest choice wins acc; per character all tie at -1,
    # except the leading space: longer choices win acc_norm.
    pred = loglik(FakeModel(), [Q2])[0]
    assert pred.prediction == "A" and not pred.correct
    assert pred.extra == {"prediction_norm": "B", "correct_norm": True}
    assert pred.scores == {"A": -5.0, "B": -26.0}


def test_loglik_mass_is_softmax_over_choices() -> None:
    pred = loglik(FakeModel(), [MULTI], mass=True)[0]
    lls = [-4.0, -9.0, -3.0]
    total = sum(2.718281828459045**x for x in lls)
    assert pred.score == pytest.approx((2.718281828459045**-4 + 2.718281828459045**-9) / total)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("B. steam", "B"),
        ("(C) rock", "C"),
        ("The answer is D.", "D"),
        ("answer: c", "C"),
        ("I think option B is right", "B"),
        ("Steam is a gas, so B.", "B"),
        ("A gas is steam.", None),  # "A" is a word here, not a letter
        ("Steam", None),
        ("The answer is E.", None),  # not one of the options
    ],
)
def test_extract_letter(text: str, expected: str | None) -> None:
    assert extract_letter(text, ["A", "B", "C", "D"]) == expected


def test_freeform_counts_parse_failures() -> None:
    fake = FakeModel(["The answer is B.", "Steam, because it is hot."])
    good, bad = freeform(fake, [Q1, Q1])
    assert (good.prediction, good.parsed, good.correct) == ("B", True, True)
    assert (bad.prediction, bad.parsed, bad.correct, bad.score) == (None, False, False, 0.0)
    assert bad.extra["text"] == "Steam, because it is hot."
    assert json.loads(bad.to_json())["parsed"] is False


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown mode 'guess'") as info:
        get_mode("guess")
    assert isinstance(info.value, BenchError), "a mistyped --mode is the user's to fix: one line, no traceback"


@pytest.mark.parametrize("name", list(MODES))
def test_each_mode_writes_what_its_record_says(name: str) -> None:
    mode = MODES[name]
    fake = FakeModel([{"reasoning": "Steam is a gas.", "answer": "B"}] * 2 if name == "cot" else ["It is B."] * 2)
    preds = mode.score(fake, [Q2, Q1], False)
    assert [p.id for p in preds] == ["q2", "q1"], "one prediction per question, in the questions' order"
    for q, p in zip([Q2, Q1], preds, strict=True):
        assert set(p.extra) == set(mode.extra)
        assert set(p.scores) == (set(q.letters) if mode.scores else set())
    assert mode.norm == ("correct_norm" in mode.extra)


def test_padded_modes_order_by_their_own_prompt() -> None:
    # The modes that batch many prompts into one padded call sort by length; one-at-a-time modes keep order.
    assert {n for n, m in MODES.items() if m.length is not None} == {"letter", "letter_raw", "loglik"}
    assert all(m.batch == 1 for m in MODES.values() if m.length is None)
    assert MODES["letter"].length(Q1) == len(render_mc(Q1))
    assert MODES["letter_raw"].length(Q1) == len(render_mc_raw(Q1))


# ---- debiasing (benchmarks.debias) ------------------------------------------------------------------


class PositionBiased(FakeModel):
    """Prefers "A" strongly and "B" a little, whatever they hold, and the right option somewhat less than that.

    The right option is recognised by its text (``right``: question text -> right option text), so the fake
    reads each prompt as a model would, lettered options included.
    """

    BIAS: ClassVar[dict[str, float]] = {"A": 2.5, "B": 1.0}
    SKILL = 1.2  # below A's bias over B: undebiased, this model always answers "A"

    def __init__(self, right: dict[str, str]) -> None:
        super().__init__()
        self.right, self.prompts = right, 0

    def _next_token_logprobs(self, prompts: list[list[int]]) -> list:
        self.prompts += len(prompts)
        return [self._row("".join(map(chr, p))) for p in prompts]

    def _row(self, text: str) -> dict:
        question = next(q for q in self.right if q in text)
        right_letter = next(line[0] for line in text.splitlines() if line[3:] == self.right[question])
        logits = {x: self.BIAS.get(x, 0.0) + (self.SKILL if x == right_letter else 0.0) for x in "ABCDE"}
        return {ord(x): v for x, v in logits.items()}


def _questions(n: int) -> list[MCQuestion]:
    options = ("red", "green", "blue", "white")
    return [MCQuestion(f"q{i}", f"Question {i}?", options, (i % 4,), "Q:") for i in range(n)]


def test_rotation_moves_the_gold_with_its_option() -> None:
    from benchmarks.debias import rotate

    q = _questions(4)[2]  # gold "blue", position 2
    turned = rotate(q, 1)
    assert turned.choices == ("green", "blue", "white", "red") and turned.gold == (1,)
    assert turned.choices[turned.gold[0]] == "blue" and turned.id == "q2#rot1"
    assert rotate(q, 0).choices == q.choices


def test_cyclic_average_separates_prior_and_option() -> None:
    import math

    from benchmarks.debias import cyclic_average, divide_prior

    prior, option = [0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]

    def observed(k: int) -> list[float]:  # position j holds option (j + k) % 4
        raw = [prior[j] * option[(j + k) % 4] for j in range(4)]
        return [x / sum(raw) for x in raw]

    debiased, found_prior = cyclic_average([observed(k) for k in range(4)])
    assert debiased == pytest.approx(option) and found_prior == pytest.approx(prior)
    assert divide_prior(observed(0), prior) == pytest.approx(option)
    assert not any(math.isnan(x) for x in divide_prior([1.0, 0.0, 0.0, 0.0], prior)), "a zero stays finite"


def test_estimation_set_is_spread_and_covers_every_option_count() -> None:
    from benchmarks.debias import estimation_set

    qs = _questions(40)
    three = MCQuestion("three", "Three?", ("a", "b", "c"), (0,), "Q:")
    chosen = estimation_set([*qs, three], fraction=0.05)
    assert [q.id for q in chosen] == ["q0", "q13", "q27", "three"], "5% of 41 spread evenly, plus one of three options"


@pytest.mark.parametrize("method", ["pride", "cyclic"])
def test_debiasing_removes_a_position_bias(method: str, tmp_path) -> None:
    from benchmarks.debias import prepare

    qs = _questions(40)
    fake = PositionBiased({q.question: q.choices[q.gold[0]] for q in qs})
    raw = letter(fake, qs)
    assert {p.prediction for p in raw} == {"A"} and sum(p.correct for p in raw) == 10, "biased: always A"
    fake.prompts = 0
    score = prepare(fake, get_mode("letter"), method, qs, tmp_path)
    preds = score(fake, qs, False)
    assert all(p.correct for p in preds), [p.prediction for p in preds]
    assert {p.extra["prediction_raw"] for p in preds} == {"A"} and sum(p.extra["correct_raw"] for p in preds) == 10
    # The cost in passes: PriDe 4 rotations of 2 estimation questions + 38 single passes; cyclic 4 per question.
    assert fake.prompts == (2 * 4 + 38 if method == "pride" else 4 * 40)
    if method == "pride":
        saved = json.loads((tmp_path / "debias.json").read_text())
        assert set(saved["rotations"]) == {"q0", "q20"} and saved["priors"]["4"][0] > 0.7
        fake.prompts = 0
        prepare(fake, get_mode("letter"), method, qs, tmp_path)
        assert fake.prompts == 0, "a resumed run reads the prior back, never asks the estimation again"


def test_debias_is_for_letter_modes_only() -> None:
    from benchmarks.run import RunSpec

    with pytest.raises(BenchError, match="use it with --mode letter or letter_raw"):
        RunSpec("arc_challenge", "loglik", debias="pride")
    with pytest.raises(BenchError, match="unknown --debias 'prior'"):
        RunSpec("arc_challenge", "letter", debias="prior")
    assert RunSpec("arc_challenge", "letter", debias="none").debias is None
    assert RunSpec("arc_challenge", "letter", debias="pride").directory.name == "arc_challenge-letter+pride-model"


def test_a_debiased_run_reports_before_and_after(data_dir, tmp_path) -> None:
    from benchmarks.run import RunSpec, read_predictions, run
    from benchmarks.tasks import load_task

    qs = load_task("arc_challenge", data_dir, sample=40)
    fake = PositionBiased({q.question: q.choices[q.gold[0]] for q in qs})
    out = tmp_path / "run"
    summary = run(
        fake, RunSpec("arc_challenge", "letter", data=data_dir, sample=40, debias="pride", out=out), progress=False
    )
    assert summary["debias"] == "pride" and summary["accuracy"] == 1.0
    assert summary["answered_raw"] == {"A": 40} and summary["accuracy_raw"] == summary["right"].get("A", 0) / 40
    assert summary["answered"] == summary["right"], "debiased, the answers follow the right letters"
    assert sum(r["extra"]["estimation"] for r in read_predictions(out / "predictions.jsonl")) == 2
    harness = json.loads((out / "results.json").read_text())
    assert harness["results"]["arc_challenge"]["acc,none"] == 1.0
    assert harness["configs"]["arc_challenge"]["metadata"]["accuracy_raw"] == summary["accuracy_raw"]
