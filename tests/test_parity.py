"""The parity script's bookkeeping (the lm-eval run itself needs the [eval] extra: see README)."""

from __future__ import annotations

import pytest

from benchmarks.parity_lmeval import report, tokens_read
from benchmarks.tasks.common import MCQuestion, render_mc_raw
from tutor.models import FakeModel

Q1 = MCQuestion("q1", "Which is a gas?", ("ice", "steam"), (1,), "Question: Which is a gas?\nAnswer:")
Q2 = MCQuestion("q2", "Hot?", ("yes", "no", "maybe"), (0,), "Question: Hot?\nAnswer:")


def test_tokens_read_counts_the_work_of_each_method() -> None:
    # FakeModel has one token per character, so every count is a length in characters.
    counts = tokens_read(FakeModel(), [Q1, Q2])
    ctx1, ctx2 = len(Q1.context), len(Q2.context)
    # lm-eval: context + " choice" once per choice, less the last token of each.
    lmeval = sum(ctx1 + 1 + len(c) - 1 for c in Q1.choices) + sum(ctx2 + 1 + len(c) - 1 for c in Q2.choices)
    assert counts["lm-eval"] == pytest.approx(lmeval / 2)
    # loglik: the context once, then each " choice" less its last token.
    loglik = ctx1 + sum(len(c) for c in Q1.choices) + ctx2 + sum(len(c) for c in Q2.choices)
    assert counts["loglik"] == pytest.approx(loglik / 2)
    # letter_raw: each prompt once, less the prefix both share ("Question: ").
    raw = [render_mc_raw(q) for q in (Q1, Q2)]
    assert counts["letter_raw"] == pytest.approx(sum(map(len, raw)) / 2 - len("Question: "))
    assert counts["letter"] > counts["letter_raw"], "the chat template adds markup to every prompt"


def test_report_shows_ratio_agreement_and_tokens() -> None:
    ref = {"method": "lm-eval", "n": 2, "seconds": 2.0, "acc": 0.5, "acc_norm": 0.5, "lls": {"q1": [-1.0, -2.0]}}
    ours = {
        "method": "ours", "n": 2, "seconds": 0.5, "acc": 0.5, "acc_norm": 0.5,
        "lls": {"q1": [-1.00004, -2.0]}, "tokens_per_question": 49.85,
    }  # fmt: skip
    table = report([ref, ours]).splitlines()
    assert table[0].endswith("| tokens/q |")
    assert table[3] == "| ours | 2 | 50.00 | 50.00 | 4.00 | 4.00x | 0.0000 | 100.0% | 49.9 |"
