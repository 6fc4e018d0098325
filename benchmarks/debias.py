"""Letter scoring without position bias: PriDe and full cyclic permutation (Zheng et al., ICLR 2024).

A model reading lettered options prefers some letters whatever they hold (the embedded 135M model answered "A"
290 times in 300 on ARC-Challenge). Zheng et al. ("Large Language Models Are Not Robust Multiple Choice
Selectors") write the observed probability of the letter in position j as a prior over positions times the
probability of the option found there: P_obs(j | x^I) = P_prior(j) * P_debiased(option at j under I) / Z.

* ``cyclic``: ask every question once per cyclic rotation of its options (n passes for n options). In the mean
  of log P_obs over the n rotations, every option sits once in every position, so the prior adds the same
  constant to each option and drops out: option i's debiased score is exp(mean_k log P_obs(position of i | k)).
  Read the other way (every position once holding each option), the same mean estimates the question's prior.
* ``pride``: estimate the prior that way on a few questions only (``PRIDE_FRACTION`` of the run, spread evenly,
  at least one per option count), average it over them, and divide it out of every other question's single
  pass. The estimation questions are answered by their cyclic average. The extra cost is (n - 1) passes per
  estimation question: about 15% on four options at 5%.

Each prediction keeps the undebiased reading too (``extra``: ``raw``, ``prediction_raw``, ``correct_raw``,
``score_raw``), so one run gives the accuracy before and after. The estimation's passes and the prior are
kept in the run directory (``debias.json``): a resumed run reuses them, never asks them again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.errors import BenchError
from benchmarks.modes import Mode, Prediction, Scorer, letter
from benchmarks.tasks.common import LETTERS, MCQuestion

if TYPE_CHECKING:
    from tutor.models.base import Model

METHODS = ("none", "pride", "cyclic")
PRIDE_FRACTION = 0.05  # the paper's estimation budget (5% of the test questions) gave most of the gain
Probs = list[float]  # a probability per position, in letter order


def check(method: str | None, mode: str) -> None:
    """``method`` is known and ``mode`` reads letter probabilities; else a BenchError saying what to pass."""
    if method in (None, "none"):
        return
    if method not in METHODS:
        raise BenchError(f"unknown --debias {method!r}: choose one of {', '.join(METHODS)}")
    if mode not in ("letter", "letter_raw"):
        raise BenchError(f"--debias {method} reweights letter probabilities: use it with --mode letter or letter_raw")


def rotate(q: MCQuestion, k: int) -> MCQuestion:
    """The question with its options turned left by ``k`` (option k comes first); gold follows its option."""
    n = len(q.choices)
    choices = tuple(q.choices[(j + k) % n] for j in range(n))
    return replace(q, id=f"{q.id}#rot{k}", choices=choices, gold=tuple(sorted((g - k) % n for g in q.gold)))


def _normalise_log(logs: Sequence[float]) -> Probs:
    top = max(logs)
    exps = [math.exp(v - top) for v in logs]
    return [e / sum(exps) for e in exps]


def _log(p: float) -> float:
    return math.log(max(p, 1e-30))  # a probability of 0 after float rounding must not become -inf


def cyclic_average(rotations: Sequence[Probs]) -> tuple[Probs, Probs]:
    """(debiased probability of each option, the question's prior over positions) from its n rotations.

    ``rotations[k][j]`` is P_obs(position j) with the options turned left by k, so position j holds option
    (j + k) mod n and option i sits at position (i - k) mod n.
    """
    n = len(rotations)
    debiased = [sum(_log(rotations[k][(i - k) % n]) for k in range(n)) / n for i in range(n)]
    prior = [sum(_log(rotations[k][j]) for k in range(n)) / n for j in range(n)]
    return _normalise_log(debiased), _normalise_log(prior)


def divide_prior(observed: Probs, prior: Probs) -> Probs:
    """PriDe's debiased distribution: observed / prior, renormalised."""
    return _normalise_log([_log(p) - _log(q) for p, q in zip(observed, prior, strict=True)])


def estimation_set(questions: Sequence[MCQuestion], fraction: float = PRIDE_FRACTION) -> list[MCQuestion]:
    """The questions PriDe estimates its prior on: ``fraction`` of them spread evenly, and one per option count.

    Spread evenly rather than the first few: a file may be sorted (the shared ARC file by answer).
    """
    n = len(questions)
    k = max(1, math.ceil(fraction * n)) if n else 0
    chosen = {questions[i * n // k].id for i in range(k)}
    counts = {len(q.choices) for q in questions if q.id in chosen}
    for q in questions:
        if len(q.choices) not in counts:
            chosen.add(q.id)
            counts.add(len(q.choices))
    return [q for q in questions if q.id in chosen]


class Debiaser:
    """A letter scorer that divides a position prior out (``pride``) or averages every rotation (``cyclic``).

    Use :func:`prepare`; :meth:`score` has the signature of a mode's scorer.
    """

    def __init__(self, method: str, chat: bool, rotations: dict[str, list[Probs]], priors: dict[int, Probs]) -> None:
        """``rotations``: the estimation questions' passes by id; ``priors``: the prior by option count."""
        self.method, self.chat, self.rotations, self.priors = method, chat, rotations, priors

    def _passes(self, model: Model, questions: Sequence[MCQuestion]) -> list[list[Probs]]:
        """Every rotation of every question, in as few model calls as the batch allows."""
        turned = [rotate(q, k) for q in questions for k in range(len(q.choices))]
        preds = letter(model, turned, chat=self.chat)
        out, at = [], 0
        for q in questions:
            n = len(q.choices)
            out.append([[p.scores[x] for x in LETTERS[:n]] for p in preds[at : at + n]])
            at += n
        return out

    def score(self, model: Model, questions: Sequence[MCQuestion], mass: bool = False) -> list[Prediction]:
        """One :class:`Prediction` per question, debiased, with the raw reading in ``extra``."""
        if self.method == "cyclic":
            passes = self._passes(model, questions)
            pairs = [(rot[0], cyclic_average(rot)[0]) for rot in passes]
        else:
            single = [q for q in questions if q.id not in self.rotations]
            read = iter(letter(model, single, chat=self.chat)) if single else iter(())
            pairs = []
            for q in questions:
                if q.id in self.rotations:  # asked in every rotation already: its cyclic average
                    rot = self.rotations[q.id]
                    pairs.append((rot[0], cyclic_average(rot)[0]))
                else:
                    scores = next(read).scores
                    raw = [scores[x] for x in q.letters]
                    pairs.append((raw, divide_prior(raw, self.priors[len(q.choices)])))
        return [_prediction(q, raw, debiased, mass, q.id in self.rotations) for q, (raw, debiased) in zip(
            questions, pairs, strict=True)]  # fmt: skip


def _prediction(q: MCQuestion, raw: Probs, debiased: Probs, mass: bool, estimation: bool) -> Prediction:
    def judge(probs: Probs) -> tuple[int, bool, float]:
        best = max(range(len(probs)), key=lambda i: probs[i])
        correct = best in q.gold
        return best, correct, float(sum(probs[i] for i in q.gold)) if mass else float(correct)

    best, correct, score = judge(debiased)
    best_raw, correct_raw, score_raw = judge(raw)
    extra = {
        "raw": dict(zip(q.letters, raw, strict=True)),
        "prediction_raw": q.letters[best_raw],
        "correct_raw": correct_raw,
        "score_raw": score_raw,
        "estimation": estimation,
    }
    scores = dict(zip(q.letters, debiased, strict=True))
    return Prediction(q.id, q.gold_letters, q.letters[best], scores, correct, True, score, extra)


def prepare(model: Model, mode: Mode, method: str, questions: Sequence[MCQuestion], out: Path) -> Scorer:
    """The scorer a run uses for ``method``: PriDe's prior estimated (or read back from ``out/debias.json``)."""
    chat = mode.name == "letter"
    if method == "cyclic":
        return Debiaser(method, chat, {}, {}).score
    chosen = estimation_set(questions)
    path = out / "debias.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if saved.get("method") == method and set(saved.get("rotations", {})) == {q.id for q in chosen}:
        rotations = saved["rotations"]
        seconds = saved.get("seconds")
    else:  # estimated once per run directory, before any question is scored
        start = time.perf_counter()
        debiaser = Debiaser(method, chat, {}, {})
        rotations = dict(zip((q.id for q in chosen), debiaser._passes(model, chosen), strict=True))
        seconds = round(time.perf_counter() - start, 3)
    priors = average_priors(rotations)
    record = {
        "method": method,
        "fraction": PRIDE_FRACTION,
        "seconds": seconds,
        "priors": priors,
        "rotations": rotations,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    tmp.replace(path)
    return Debiaser(method, chat, rotations, {int(n): p for n, p in priors.items()}).score


def average_priors(rotations: dict[str, list[Probs]]) -> dict[str, Probs]:
    """The prior over positions for each option count: the mean of the estimation questions' own priors."""
    by_n: dict[int, list[Probs]] = {}
    for rot in rotations.values():
        by_n.setdefault(len(rot), []).append(cyclic_average(rot)[1])
    return {str(n): [sum(col) / len(ps) for col in zip(*ps, strict=True)] for n, ps in sorted(by_n.items())}


__all__ = ["METHODS", "Debiaser", "check", "cyclic_average", "divide_prior", "estimation_set", "prepare", "rotate"]
