"""Five ways to score a multiple-choice question over the Model API.

* ``letter``: the question with lettered options; the answer is constrained to the valid letters and
  read from one forward pass (:meth:`Model.choose`, batched); every letter's probability is kept.
* ``letter_raw``: the same reading on raw text, no chat template ("Question: ...", the lettered
  options, "Answer:"; the letters as " A", " B"...): for base models; lm-evaluation-harness's MMLU format.
* ``cot``: the model reasons, then answers, under a JSON schema whose ``answer`` is an enum of the
  letters (``reasoning`` has a ``maxLength`` so a looping small model still ends).
* ``loglik``: lm-evaluation-harness's method: log P(" " + choice | context) per choice; ``acc`` takes
  the argmax, ``acc_norm`` the argmax of the log-likelihood divided by the choice's length in characters.
* ``freeform``: unconstrained text and a regex for the letter, the original project's method, kept to
  measure what it loses: an answer the regex cannot read is a parse failure (and wrong).

Each mode is one :class:`Mode` record in ``MODES``: its scorer, its batch size and order, and what its
predictions carry. Every mode returns one :class:`Prediction` per question. For MC2-style tasks (several right
answers) the per-question ``score`` is the probability mass on the right answers where the mode has
a distribution (letter, letter_raw, loglik), else 1 or 0.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from benchmarks.errors import BenchError
from benchmarks.tasks.common import MCQuestion, render_mc, render_mc_raw

if TYPE_CHECKING:
    from tutor.models.base import Model

COT_REASONING_CHARS = 300  # long enough for a few steps; short enough that a 135M model's loops end fast
COT_MAX_TOKENS = 256
FREEFORM_MAX_TOKENS = 48


@dataclass
class Prediction:
    """One scored question, as written to predictions.jsonl."""

    id: str
    gold: list[str]  # the right letters
    prediction: str | None  # the chosen letter; None when a freeform answer could not be parsed
    scores: dict[str, float]  # letter -> probability (letter), log-likelihood (loglik); empty otherwise
    correct: bool
    parsed: bool  # False only for a freeform answer with no readable letter
    score: float  # 1/0, or the probability mass on the right answers (truthfulqa_mc2)
    extra: dict[str, Any] = field(default_factory=dict)  # mode-specific: acc_norm, the raw text, ...

    def to_json(self) -> str:
        """One JSONL line."""
        return json.dumps(asdict(self), ensure_ascii=False)


def _judge(q: MCQuestion, pred: int | None, probs: Sequence[float] | None, mass: bool) -> tuple[bool, float]:
    correct = pred is not None and pred in q.gold
    if mass and probs is not None:
        return correct, float(sum(probs[i] for i in q.gold))
    return correct, float(correct)


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    return [e / sum(exps) for e in exps]


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


# ---- letter -------------------------------------------------------------------------------------


def letter(model: Model, questions: Sequence[MCQuestion], mass: bool = False, chat: bool = True) -> list[Prediction]:
    """One constrained forward pass per question, batched; prompts sorted by length to pad less."""
    render, space = (render_mc, "") if chat else (render_mc_raw, " ")
    prompts = [render(q) for q in questions]
    order = sorted(range(len(questions)), key=lambda i: len(prompts[i]))
    options = [[space + x for x in questions[i].letters] for i in order]
    picked = model.choose([prompts[i] for i in order], options, chat=chat)
    by_index = dict(zip(order, picked, strict=True))
    out = []
    for i, q in enumerate(questions):
        choice = by_index[i]
        probs = {x: choice.probs[space + x] for x in q.letters}
        answer = choice.answer.strip()
        correct, score = _judge(q, q.letters.index(answer), list(probs.values()), mass)
        out.append(Prediction(q.id, q.gold_letters, answer, probs, correct, True, score))
    return out


def letter_raw(model: Model, questions: Sequence[MCQuestion], mass: bool = False) -> list[Prediction]:
    """:func:`letter` on raw text, no chat template."""
    return letter(model, questions, mass, chat=False)


# ---- cot ----------------------------------------------------------------------------------------


def cot_schema(letters: Sequence[str]) -> dict[str, Any]:
    """Reasoning first (generation follows property order), then the answer as an enum of letters."""
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": COT_REASONING_CHARS},
            "answer": {"type": "string", "enum": list(letters)},
        },
        "required": ["reasoning", "answer"],
        "additionalProperties": False,
    }


def cot_prompt(q: MCQuestion) -> str:
    """The lettered question, asking for brief reasoning then the letter, as JSON."""
    return render_mc(q).rsplit("\n\n", 1)[0] + (
        '\n\nThink briefly step by step, then answer. Reply as JSON: {"reasoning": "...", "answer": "<letter>"}.'
    )


def cot(model: Model, questions: Sequence[MCQuestion], mass: bool = False) -> list[Prediction]:
    """Reason, then answer under the schema; the answer always parses (else ConstraintViolation)."""
    out = []
    for q in questions:
        text = model.generate(cot_prompt(q), cot_schema(q.letters), max_tokens=COT_MAX_TOKENS)
        doc = json.loads(text)
        answer = doc["answer"]
        correct, score = _judge(q, q.letters.index(answer), None, mass)
        extra = {"reasoning": doc["reasoning"]}
        out.append(Prediction(q.id, q.gold_letters, answer, {}, correct, True, score, extra))
    return out


# ---- loglik -------------------------------------------------------------------------------------


def loglik(model: Model, questions: Sequence[MCQuestion], mass: bool = False) -> list[Prediction]:
    """lm-evaluation-harness's multiple_choice scoring; all choices of the batch in one call.

    Pairs go question by question, so a backend that keeps its KV cache (llama.cpp) computes each
    question's context once for all its choices.
    """
    pairs = [(q.context, f" {c}") for q in questions for c in q.choices]
    lls = model.loglikelihood(pairs)
    out, at = [], 0
    for q in questions:
        ll = lls[at : at + len(q.choices)]
        at += len(q.choices)
        pred = _argmax(ll)
        pred_norm = _argmax([x / len(c) for x, c in zip(ll, q.choices, strict=True)])
        correct, score = _judge(q, pred, _softmax(ll), mass)
        extra = {"prediction_norm": q.letters[pred_norm], "correct_norm": pred_norm in q.gold}
        scores = dict(zip(q.letters, ll, strict=True))
        out.append(Prediction(q.id, q.gold_letters, q.letters[pred], scores, correct, True, score, extra))
    return out


# ---- freeform -----------------------------------------------------------------------------------

# In order of trust: an explicit "answer is X", a reply that starts with the letter, "option X",
# then a letter set off as "(X)" or "X." anywhere. A bare capital is not read: "A" is also a word.
_PATTERNS = (
    r"answer\s*(?:is|:)?\s*:?\s*(?:option\s*)?\(?\b([A-Z])\b",
    r"^\s*\(?([A-Z])\)?(?:[.):,]|[ \t]*(?:\n|$))",
    r"\b(?:option|choice)\s*\(?([A-Z])\b",
    r"\(([A-Z])\)",
    r"\b([A-Z])[.)](?:\s|$)",
)


def extract_letter(text: str, letters: Sequence[str]) -> str | None:
    """The letter a free-text answer names, or None when no pattern finds a valid one."""
    for pattern in _PATTERNS:
        for match in re.finditer(pattern, text, flags=re.IGNORECASE if pattern.startswith("answer") else 0):
            found = match.group(1).upper()
            if found in letters:
                return found
    return None


def freeform(model: Model, questions: Sequence[MCQuestion], mass: bool = False) -> list[Prediction]:
    """Unconstrained greedy answer, then :func:`extract_letter`."""
    out = []
    for q in questions:
        text = model.generate(render_mc(q), max_tokens=FREEFORM_MAX_TOKENS)
        answer = extract_letter(text, q.letters)
        pred = q.letters.index(answer) if answer else None
        correct, score = _judge(q, pred, None, mass)
        out.append(Prediction(q.id, q.gold_letters, answer, {}, correct, answer is not None, score, {"text": text}))
    return out


Scorer = Callable[["Model", Sequence[MCQuestion], bool], list[Prediction]]  # (model, questions, mass) -> predictions


@dataclass(frozen=True)
class Mode:
    """A scoring mode: how it scores, how a run batches and orders its questions, and what it writes."""

    name: str  # the command-line name
    score: Scorer  # one Prediction per question, in the questions' order
    batch: int  # questions per model call (and per progress step) unless --batch-size says otherwise
    # A question's prompt length, for modes whose backend pads a batch to its longest prompt: a run scores
    # their questions shortest first, so each batch holds prompts of about one length (ARC-Challenge
    # validation, letter_raw, batches of 16 in file order: 44% of the positions computed were padding;
    # sorted across the run: 5%). None: questions keep their order (one at a time, nothing to pad).
    length: Callable[[MCQuestion], int] | None
    scores: str  # what Prediction.scores holds per letter ("" when nothing)
    extra: tuple[str, ...] = ()  # the keys of Prediction.extra
    norm: bool = False  # also judged by acc_norm (extra's correct_norm): the summary reports accuracy_norm


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("letter", letter, batch=32, length=lambda q: len(render_mc(q)), scores="probability"),
        Mode("letter_raw", letter_raw, batch=32, length=lambda q: len(render_mc_raw(q)), scores="probability"),
        Mode("cot", cot, batch=1, length=None, scores="", extra=("reasoning",)),
        Mode(
            "loglik",
            loglik,
            batch=16,
            length=lambda q: len(q.context) + sum(len(c) for c in q.choices),
            scores="log-likelihood",
            extra=("prediction_norm", "correct_norm"),
            norm=True,
        ),
        Mode("freeform", freeform, batch=1, length=None, scores="", extra=("text",)),
    )
}


def get_mode(name: str) -> Mode:
    """The mode by name, or a BenchError listing the modes."""
    if name not in MODES:
        raise BenchError(f"unknown mode {name!r}: choose one of {', '.join(MODES)}")
    return MODES[name]
