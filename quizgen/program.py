"""The quiz agent, a ``dspy.Module``: grounded by default, or the model's own writer when asked.

A request with ``grounded=True`` (the default) goes to :class:`quizgen.grounded.GroundedQuizAgent`: keys,
explanations and distractors are sentences of a course knowledge base, each with its source. A request with
``grounded=False`` is written by the model alone, as below, and its questions carry no source (they are
marked ungrounded everywhere a student or teacher sees them). For such a topic (and optionally the student's
own notes) :class:`QuizAgent` plans N distinct learning objectives, then for each one:

1. **write** one :class:`~quizgen.schema.QuestionDraft` under the JSON schema (DSPy's JSONAdapter turns
   the signature into constrained decoding, so the draft always parses, whatever the model's size);
2. **place** the key: the options are permuted so the keys spread evenly over A-D (a small model puts
   its answer first; students learn that);
3. **check** it with the deterministic checks in :mod:`quizgen.checks`;
4. **verify** it: the model answers its own question blind (the key hidden) and must pick the key. The
   answer is a ``dspy.Predict`` over :class:`BlindAnswer`, whose one output is a letter: the engine reads it
   off one forward pass (:func:`tutor.engine.judgment_of`), and DSPy sees the call like every other;
5. on any failure, **repair**: write again with the failure as feedback, at most ``max_attempts`` drafts
   per question and ``repair_budget`` extra drafts per quiz. A question that still fails is handed on
   flagged (``verified=False`` with its ``issues``), never silently.

``plan``, ``write`` and ``blind`` are ordinary ``dspy.Predict`` modules, so DSPy optimizers (BootstrapFewShot,
MIPRO, GEPA) tune them (``ta optimize quiz``, :mod:`tutor.optimize`); every model call of the ungrounded agent
goes through them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import random
import re
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import dspy
from dspy.utils.exceptions import AdapterParseError, LMError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from quizgen import checks
from quizgen.request import QuizRequest
from quizgen.schema import (
    BLOOM_LEVELS,
    LETTERS,
    VERIFY_PREFIX,
    Question,
    QuestionDraft,
    Quiz,
    QuizItem,
    QuizMetadata,
)
from tutor.errors import InputError, TutorError
from tutor.models.base import Model
from tutor.models.constraints import ConstraintViolation

SOURCE_PROMPT_CHARS = 1200  # the slice of the source a prompt carries (a 135M model reads little well)
PLAN_BATCH = 10  # objectives planned per call
PLAN_OBJECTIVE_MAX = 60
WRITE_MAX_TOKENS = 800  # > the longest draft the schema allows (every string at its maxLength)
PLAN_MAX_TOKENS = PLAN_BATCH * (PLAN_OBJECTIVE_MAX + 4) + 40
SAMPLING = {"repetition_penalty": 1.2}  # a 135M model otherwise repeats a phrase until the limit
# What one unusable draft or plan raises: output that broke its constraint even after the retry with more room
# (see _model_errors), a reply DSPy's adapter could not parse, a draft the Question model refuses. Anything else
# is a bug (ours or a library's) or the user's to fix (a TutorError): it propagates.
UNUSABLE_OUTPUT = (ConstraintViolation, AdapterParseError, ValidationError)

PlanObjective = Annotated[str, StringConstraints(min_length=3, max_length=PLAN_OBJECTIVE_MAX)]


class LearningPlan(BaseModel):
    """What the planner writes: distinct learning objectives, each one short sentence."""

    model_config = ConfigDict(extra="forbid")

    objectives: list[PlanObjective] = Field(min_length=1, max_length=PLAN_BATCH)


@functools.cache
def _plan_model(k: int) -> type[LearningPlan]:
    return create_model(
        "LearningPlan",
        __base__=LearningPlan,
        objectives=(list[PlanObjective], Field(min_length=1, max_length=k)),
    )


class PlanObjectives(dspy.Signature):
    """Plan distinct learning objectives for a machine-learning quiz on the topic (and the source text, when given).

    Each objective is one short sentence that starts with a verb (define, explain, apply, compare, evaluate)
    and tests a different idea. Do not repeat an objective from the already planned list.
    """

    topic: str = dspy.InputField()
    difficulty: str = dspy.InputField(desc="easy, medium or hard")
    source: str = dspy.InputField(desc="the student's notes to quiz on, or 'none'")
    already_planned: str = dspy.InputField(desc="objectives planned before, or 'none'")
    plan: LearningPlan = dspy.OutputField()


class WriteQuestion(dspy.Signature):
    """Write one multiple-choice question for a machine-learning course that tests the learning objective.

    The stem is a full question. Exactly one of the four options is correct; the other three are plausible
    but wrong, distinct, and about as long as the correct one. No "all of the above" or "none of the above".
    If feedback names problems with a previous attempt, fix them.
    """

    topic: str = dspy.InputField()
    objective: str = dspy.InputField(desc="the learning objective the question tests")
    difficulty: str = dspy.InputField(desc="easy, medium or hard")
    source: str = dspy.InputField(desc="the student's notes the question must be based on, or 'none'")
    feedback: str = dspy.InputField(desc="what was wrong with the previous attempt, or 'none'")
    question: QuestionDraft = dspy.OutputField()


class BlindAnswer(dspy.Signature):
    """Answer the multiple-choice question with the letter of the correct option."""

    question: str = dspy.InputField(desc="the question with its lettered options")
    answer: Literal["A", "B", "C", "D"] = dspy.OutputField()


class LetterAdapter(dspy.ChatAdapter):
    """The blind question as one user turn (the same text the model always answered), the reply one letter.

    The response format is a JSON object whose one property is the letter: :class:`tutor.engine.TutorEngine`
    answers such a *judgment* from one forward pass, so the check costs what ``Model.choose`` costs.
    """

    def format(self, signature: type[dspy.Signature], demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list:
        """Demos as user/assistant turns, then the question."""
        messages: list[dict[str, str]] = []
        for demo in demos:
            if "question" in demo and "answer" in demo:
                messages.append({"role": "user", "content": str(demo["question"])})
                messages.append({"role": "assistant", "content": json.dumps({"answer": str(demo["answer"])})})
        messages.append({"role": "user", "content": str(inputs["question"])})
        return messages

    def __call__(self, lm: Any, lm_kwargs: dict[str, Any], signature: Any, demos: list, inputs: dict) -> list:
        """Ask for the letter as a judgment, and read it back."""
        keys = list(typing.get_args(signature.output_fields["answer"].annotation))
        schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": keys}}, "required": ["answer"]}
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        lm_kwargs = {**lm_kwargs, "response_format": fmt}
        outputs = lm(messages=self.format(signature, demos, inputs), **lm_kwargs)
        return [self.parse(signature, o["text"] if isinstance(o, dict) else o) for o in outputs]

    def parse(self, signature: type[dspy.Signature], completion: str) -> dict[str, Any]:
        """The letter from ``{"answer": "B"}``."""
        try:
            return {"answer": json.loads(completion)["answer"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise AdapterParseError(
                adapter_name="LetterAdapter", signature=signature, lm_response=completion, message=str(exc)
            ) from exc


PLAN_DEMO = dspy.Example(
    topic="gradient descent",
    difficulty="medium",
    source="none",
    already_planned="none",
    plan=LearningPlan(
        objectives=[
            "Explain what the learning rate controls",
            "Identify the sign of a learning rate that is too large",
            "Compare batch and stochastic gradient descent",
        ]
    ),
).with_inputs("topic", "difficulty", "source", "already_planned")

WRITE_DEMO = dspy.Example(
    topic="gradient descent",
    objective="Explain what the learning rate controls",
    difficulty="medium",
    source="none",
    feedback="none",
    question=QuestionDraft(
        stem="In gradient descent, what does the learning rate control?",
        options=[
            "The size of each parameter update",
            "The number of layers in the network",
            "How many examples the dataset holds",
            "The order of the training examples",
        ],
        answer="A",
        explanation="Each step moves the weights by the learning rate times the gradient.",
        wrong_reasons=[
            "The architecture fixes the number of layers.",
            "The dataset is collected before training starts.",
            "Shuffling, not the learning rate, orders the examples.",
        ],
    ),
).with_inputs("topic", "objective", "difficulty", "source", "feedback")

# Objectives the agent falls back on when the planner returns too few distinct ones: (bloom, template).
FALLBACK_OBJECTIVES = (
    ("remember", "Define {topic} and its key terms"),
    ("understand", "Explain the main idea behind {topic}"),
    ("apply", "Apply {topic} to a small worked example"),
    ("analyze", "Distinguish {topic} from a closely related idea"),
    ("evaluate", "Judge when {topic} is the right choice"),
    ("understand", "Identify a common misconception about {topic}"),
    ("remember", "Recall what problem {topic} solves"),
    ("apply", "Predict the effect of changing a setting of {topic}"),
    ("analyze", "Diagnose a problem caused by misusing {topic}"),
    ("evaluate", "Weigh the strengths and weaknesses of {topic}"),
)
BLOOM_VERBS = {
    "remember": ("define", "recall", "list", "name", "state", "recognize", "recognise"),
    "understand": ("explain", "describe", "identify", "summarize", "summarise", "interpret", "classify"),
    "apply": ("apply", "use", "compute", "calculate", "implement", "predict", "solve"),
    "analyze": ("compare", "contrast", "distinguish", "analyze", "analyse", "diagnose", "differentiate"),
    "evaluate": ("evaluate", "judge", "justify", "assess", "critique", "weigh", "choose"),
    "create": ("design", "create", "propose", "construct", "formulate"),
}
DEFAULT_BLOOM = {"easy": "remember", "medium": "understand", "hard": "apply"}


class QuizAgent(dspy.Module):
    """Writes quizzes that are valid by construction and checked before anyone sees them.

    ``QuizAgent(model)``; ``agent.stream(QuizRequest("overfitting", n=10))`` yields each :class:`QuizItem` as
    soon as it is ready; ``agent.run(request)`` returns the :class:`Quiz`; ``agent(topic=..., n=...)`` returns a
    Prediction with ``quiz``. ``stream`` and ``run`` also take a topic and the request's fields as keywords.
    """

    def __init__(
        self,
        model: Model,
        max_attempts: int = 3,
        repair_budget: float = 0.5,
        adapter: dspy.Adapter | None = None,
        kb: Any = None,
    ) -> None:
        """Wrap ``model`` (the agent borrows it; it never closes it).

        Args:
            model: any Model (llama.cpp, transformers, OpenAI-compatible, FakeModel).
            max_attempts: drafts per question at most (the first one included).
            repair_budget: extra drafts per quiz beyond one per question, as a share of N (0.5: 5 for 10
                questions); bounds the time a quiz takes when the model fails often.
            adapter: the DSPy adapter; the JSONAdapter makes every output constrained.
            kb: a knowledge base every grounded request is written from (default: the request's ``kb``).

        Raises:
            InputError: for ``max_attempts`` under 1 or a negative ``repair_budget`` (a ``ValueError`` too).
        """
        super().__init__()
        from tutor.engine import make_lm

        if max_attempts < 1:
            raise InputError(f"max_attempts must be at least 1, got {max_attempts}")
        if repair_budget < 0:
            raise InputError(f"repair_budget must be at least 0, got {repair_budget}")
        self.model = model
        self.max_attempts = max_attempts
        self.repair_budget = repair_budget
        self.adapter = adapter or dspy.JSONAdapter()
        self.plan = dspy.Predict(PlanObjectives)
        self.plan.demos = [PLAN_DEMO]
        # No default demo for the writer: a 135M model copies a demo's question verbatim (off topic), and
        # the demo's ~350 prompt tokens are paid on every draft. WRITE_DEMO is there for larger models.
        self.write = dspy.Predict(WriteQuestion)
        self.blind = dspy.Predict(BlindAnswer)
        self.blind_adapter = LetterAdapter()
        self.lm = make_lm(model, sampling=SAMPLING, max_tokens=WRITE_MAX_TOKENS)
        from quizgen.grounded import GroundedQuizAgent

        # request.grounded (the default) is written there; it answers blind with this agent's predictor
        self.grounded = GroundedQuizAgent(model, kb=kb, blind=self.blind_answer)

    def __deepcopy__(self, memo: dict[int, Any]) -> QuizAgent:
        """A copy with its own predictors (what an optimizer tunes) sharing the model, the LM and the grounded agent.

        ``copy.deepcopy`` of the whole agent would try to copy the loaded model (native memory, gigabytes).
        """
        import copy

        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        for name in ("plan", "write", "blind"):
            setattr(new, name, copy.deepcopy(getattr(self, name), memo))
        new.grounded = self.grounded.with_blind(new.blind_answer)
        return new

    # ---- public API ------------------------------------------------------------------------------

    def forward(self, topic: str, **fields: Any) -> dspy.Prediction:
        """Run the agent; the Prediction's ``quiz`` is the :class:`Quiz` (for DSPy optimizers and metrics)."""
        return dspy.Prediction(quiz=self.run(QuizRequest(topic, **fields)))

    def run(self, request: QuizRequest | str, **fields: Any) -> Quiz:
        """Write a whole quiz (see :meth:`stream` for the arguments)."""
        request = as_request(request, **fields)
        started = time.perf_counter()
        items = list(self.stream(request))
        return self.assemble(request, items, seconds=time.perf_counter() - started)

    def assemble(self, request: QuizRequest, items: list[QuizItem], seconds: float = 0.0) -> Quiz:
        """A Quiz from streamed items, with metadata on how it was made."""
        if request.grounded:
            return self.grounded.assemble(request, items, seconds)
        metadata = QuizMetadata(
            model=self.model.name,
            seed=request.seed,
            temperature=request.temperature,
            difficulty=request.difficulty,
            seconds=round(seconds, 2),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 - readable
            source=request.source_text[:200] if request.source_text else None,
            extra={
                "requested": request.n,  # more than len(questions) when the writing was stopped
                "attempts": [item.attempts for item in items],
                "verified": [item.verified for item in items],
                "max_attempts": self.max_attempts,
                "repair_budget": self.repair_budget,
                "backend": self.model.backend,
                "grounded": False,
            },
        )
        return Quiz(topic=request.topic, questions=items, metadata=metadata)

    def stream(self, request: QuizRequest | str, **fields: Any) -> Iterator[QuizItem]:
        """Yield each question as soon as it is checked and verified.

        Args:
            request: the quiz to write; or its topic, with the request's other fields as keywords
                (``agent.stream("overfitting", n=5, seed=1)``).
            **fields: the other :class:`QuizRequest` fields, when ``request`` is a topic.

        Raises:
            QuizRequestError: for a bad request, saying what to pass instead (now, not at the first ``next()``).
        """
        request = as_request(request, **fields)
        if request.grounded:
            return self.grounded.stream(request)
        return self._stream(request)

    def _stream(self, request: QuizRequest) -> Iterator[QuizItem]:
        letters = _balanced_letters(request.n, random.Random(request.seed))
        budget = Budget(extra=math.ceil(self.repair_budget * request.n), per_question=self.max_attempts)
        done: list[Question] = []
        for index, (objective, bloom) in enumerate(self.plan_objectives(request)):
            item = self.write_item(request, Slot(index, objective, bloom, letters[index]), done, budget)
            done.append(item.question)
            yield item

    # ---- steps -----------------------------------------------------------------------------------

    def plan_objectives(self, request: QuizRequest) -> list[tuple[str, str]]:
        """N distinct (objective, bloom level) pairs: the planner's first, then fallbacks to fill up."""
        n, topic = request.n, request.topic
        planned: list[str] = []
        calls = 0
        while len(planned) < n and calls < (n + PLAN_BATCH - 1) // PLAN_BATCH:
            calls += 1
            config = _config(request.temperature, _seed(request, 999 - calls))
            try:
                with dspy.context(lm=self.lm, adapter=self.adapter), _model_errors():
                    pred = self.plan(
                        signature=self._plan_signature(min(n - len(planned), PLAN_BATCH)),
                        topic=topic,
                        difficulty=request.difficulty,
                        source=_excerpt(request.source_text, topic),
                        already_planned="; ".join(planned) or "none",
                        config={**config, "max_tokens": PLAN_MAX_TOKENS},
                    )
                new = list(pred.plan.objectives)
            except UNUSABLE_OUTPUT:  # the templates below fill in
                new = []
            planned.extend(o.strip() for o in new if _is_new(o, planned, topic))
        planned = planned[:n]
        fallback = iter(_fallback_objectives(topic, n))
        while len(planned) < n:
            candidate = next(fallback)
            if candidate not in planned:  # templates are distinct; only an exact repeat of the planner's is skipped
                planned.append(candidate)
        return [(o, _bloom_of(o, request.difficulty)) for o in planned]

    def _plan_signature(self, k: int) -> type[dspy.Signature]:
        """The plan signature asking for at most ``k`` objectives (a 3-question quiz plans 3, not 10).

        Passed to ``self.plan`` per call rather than made a new Predict: the call is then traced to ``plan``, so
        an optimizer's demos and instructions land there (and are saved with the program).
        """
        if k >= PLAN_BATCH:
            return self.plan.signature
        return self.plan.signature.with_updated_fields("plan", type_=_plan_model(k))

    def write_item(self, request: QuizRequest, slot: Slot, earlier: list[Question], budget: Budget) -> QuizItem:
        """Write, check and verify one question, repairing within the budget; flag it if it still fails."""
        started = time.perf_counter()
        feedback = "none"
        best: tuple[int, Question, list[str]] | None = None  # (rank, question, issues): lower rank is better
        attempts = 0
        while budget.allows(attempts):
            attempts += 1
            budget.spend(attempts)
            config = _config(request.temperature, _seed(request, slot.index * 10 + attempts))
            try:
                question = self.draft(request, slot, feedback, config)
            except UNUSABLE_OUTPUT as exc:
                feedback = f"the previous attempt could not be used ({type(exc).__name__}): write a complete question"
                continue
            issues = checks.check_question(question, earlier)
            if not issues:
                issues = self.verify(request.topic, question)
            rank = 0 if not issues else 1 if all(i.startswith(VERIFY_PREFIX) for i in issues) else 2
            if best is None or rank < best[0]:
                best = (rank, question, issues)
            if not issues:
                break
            feedback = _feedback(question, issues)
        if best is None:
            raise RuntimeError(
                f"the model wrote no usable question for {slot.objective!r} in {attempts} attempts: "
                "check that the model loads and answers (ta ask 'hello')"
            )
        _, question, issues = best
        return QuizItem(
            question=question,
            verified=not issues,
            attempts=attempts,
            issues=issues,
            seconds=round(time.perf_counter() - started, 2),
        )

    def draft(self, request: QuizRequest, slot: Slot, feedback: str, config: dict[str, Any]) -> Question:
        """One constrained draft, turned into a Question with its key moved to the slot's letter."""
        with dspy.context(lm=self.lm, adapter=self.adapter), _model_errors():
            pred = self.write(
                topic=request.topic,
                objective=slot.objective,
                difficulty=request.difficulty,
                source=_excerpt(request.source_text, slot.objective),
                feedback=feedback,
                config=config,
            )
        question = Question.from_draft(pred.question, slot.objective, slot.bloom, request.difficulty)
        return place_key(question, slot.letter)

    def verify(self, topic: str, question: Question) -> list[str]:
        """The model answers blind; [] when it picks the key, else the reason it is flagged."""
        answer = self.blind_answer(topic, question)
        if answer == question.answer:
            return []
        return [
            f"{VERIFY_PREFIX} answering blind, the model chose {answer}, not the key {question.answer}: "
            "the key may be wrong or the question ambiguous"
        ]

    def blind_answer(self, topic: str, question: Question) -> str:
        """The letter the model picks for ``question`` with the key hidden (greedy: one forward pass)."""
        with dspy.context(lm=self.lm, adapter=self.blind_adapter), _model_errors():
            pred = self.blind(question=blind_prompt(topic, question), config={"temperature": 0.0})
        return pred.answer


@dataclass(frozen=True)
class Slot:
    """One question of the plan: its place in the quiz, the objective it tests, its Bloom level, its key letter."""

    index: int
    objective: str
    bloom: str
    letter: str


class Budget:
    """Drafts left: at most ``per_question`` for one question, and ``extra`` repairs for the whole quiz."""

    def __init__(self, extra: int, per_question: int) -> None:
        self.extra = extra
        self.per_question = per_question

    def allows(self, attempts_so_far: int) -> bool:
        """Whether one more draft may be written for a question that has had ``attempts_so_far``."""
        if attempts_so_far == 0:
            return True  # every question gets its first draft
        return attempts_so_far < self.per_question and self.extra > 0

    def spend(self, attempt: int) -> None:
        """Record a draft; every draft after a question's first comes out of the quiz's extra budget."""
        if attempt > 1:
            self.extra -= 1


def as_request(request: QuizRequest | str, **fields: Any) -> QuizRequest:
    """``request`` itself, or a new request for the topic ``request`` with ``fields`` (validated either way)."""
    if isinstance(request, QuizRequest):
        if fields:
            raise TypeError(f"pass {', '.join(fields)} inside the QuizRequest, not beside it")
        return request
    return QuizRequest(request, **fields)


def place_key(question: Question, letter: str) -> Question:
    """The same question with its options permuted so the key sits at ``letter`` (reasons follow their options)."""
    if question.answer == letter:
        return question
    old, new = LETTERS.index(question.answer), LETTERS.index(letter)
    order = list(range(len(LETTERS)))
    order[old], order[new] = order[new], order[old]  # order[new_position] = old_position
    reasons = {LETTERS[pos]: question.wrong_reasons[LETTERS[order[pos]]] for pos in range(4) if pos != new}
    options = [question.options[order[pos]] for pos in range(4)]
    return question.model_copy(update={"options": options, "answer": letter, "wrong_reasons": reasons})


def blind_prompt(topic: str, question: Question) -> str:
    """The prompt the model answers its own question from: stem and options, the key hidden."""
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(LETTERS, question.options, strict=True))
    return (
        f"Answer this multiple-choice question about {topic}. Reply with the letter of the correct option only.\n\n"
        f"{question.stem}\n{options}\nAnswer:"
    )


def _balanced_letters(n: int, rng: random.Random) -> list[str]:
    # Each run of four questions uses every letter once: keys spread evenly, in an order nobody can learn.
    letters: list[str] = []
    while len(letters) < n:
        block = list(LETTERS)
        rng.shuffle(block)
        letters.extend(block)
    return letters[:n]


@contextlib.contextmanager
def _model_errors() -> Iterator[None]:
    """Raise the model layer's own exceptions through DSPy, which wraps every engine exception in an ``LMError``.

    A constraint violation says the output is unusable (the agent writes again) and a TutorError says what the
    user must do (``ta`` prints it in one line): both come out as themselves. Anything else stays DSPy's
    ``LMUnexpectedError`` with its cause and traceback: a bug, which must never become feedback for the model.
    """
    try:
        yield
    except LMError as exc:
        if isinstance(exc.__cause__, ConstraintViolation | TutorError):
            raise exc.__cause__  # noqa: B904 - the cause is the error; DSPy's wrapper adds nothing to it
        raise


def _seed(request: QuizRequest, offset: int) -> int | None:
    # One seed per model call, all derived from the request's: a repeatable quiz is repeatable call by call.
    return None if request.seed is None else request.seed * 1000 + offset


def _config(temperature: float, seed: int | None) -> dict[str, Any]:
    config: dict[str, Any] = {"temperature": float(temperature)}
    if seed is not None:
        config["seed"] = seed
    return config


def _feedback(question: Question, issues: list[str]) -> str:
    problems = "; ".join(issues)
    return f"The previous attempt asked {question.stem!r}. Problems: {problems}. Write a better question."[:600]


def _is_new(objective: str, planned: list[str], topic: str) -> bool:
    """A usable objective: a few plain words (not code or a bare topic), unlike every one planned so far."""
    text = checks.normalise(objective)
    words = text.split()
    if len(words) < 3 or text == checks.normalise(topic) or re.search(r"[{}<>#/=_]", objective):
        return False
    if sum(w.isalpha() for w in words) < 0.7 * len(words):
        return False
    from difflib import SequenceMatcher

    return all(SequenceMatcher(None, text, checks.normalise(p)).ratio() < checks.NEAR_DUPLICATE for p in planned)


def _fallback_objectives(topic: str, n: int) -> Iterator[str]:
    for round_ in range(1, n + 2):
        for _, template in FALLBACK_OBJECTIVES:
            text = template.format(topic=topic)
            yield text if round_ == 1 else f"{text} (part {round_})"


def _bloom_of(objective: str, difficulty: str) -> str:
    words = re.findall(r"[a-z]+", objective.lower())
    for word in words[:3]:
        for level, verbs in BLOOM_VERBS.items():
            if word in verbs:
                return level
    for level, template in FALLBACK_OBJECTIVES:
        if objective.startswith(template.split("{")[0]) and level in BLOOM_LEVELS:
            return level
    return DEFAULT_BLOOM[difficulty]


def _excerpt(source: str | None, query: str) -> str:
    """The slice of the source that shares the most words with ``query`` (the whole source if it is short)."""
    if not source:
        return "none"
    if len(source) <= SOURCE_PROMPT_CHARS:
        return source
    words = set(checks.normalise(query).split())
    step = SOURCE_PROMPT_CHARS // 2
    windows = [source[i : i + SOURCE_PROMPT_CHARS] for i in range(0, len(source) - step, step)]
    return max(windows, key=lambda w: len(words & set(checks.normalise(w).split())))
