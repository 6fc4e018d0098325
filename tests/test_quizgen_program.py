"""The quiz agent's logic on a scripted model: plan, write, check, verify, repair, flag, budget, streaming."""

from __future__ import annotations

import json
import random

import pytest

from quizgen import QuizAgent, QuizRequest, QuizRequestError
from quizgen.program import _balanced_letters, blind_prompt, place_key
from quizgen.schema import LETTERS, Question
from tests.quizgen_fixtures import make_question
from tutor.models import FakeModel, ModelError


@pytest.fixture(autouse=True)
def _dspy_keeps_call_history():
    """A server started earlier in the run (the app tests) turns DSPy's call history off for the process."""
    import dspy

    with dspy.context(disable_history=False):
        yield


def draft(stem: str, options=None, answer="A") -> dict:
    return {
        "question": {
            "stem": stem,
            "options": options or ["Step size of updates", "Number of hidden layers", "Dataset size", "Example order"],
            "answer": answer,
            "explanation": "The learning rate scales every gradient step.",
            "wrong_reasons": ["first wrong reason", "second wrong reason", "third wrong reason"],
        }
    }


class Script:
    """A responder: plans from ``objectives``; writes the queued drafts in order (dicts), one per write call."""

    def __init__(self, objectives: list[str], drafts: list[dict]) -> None:
        self.objectives = objectives
        self.drafts = list(drafts)
        self.writes: list[str] = []  # the prompt of every write call

    def __call__(self, messages, constraint) -> str:
        schema = json.dumps(constraint.schema)
        if '"plan"' in schema:
            return json.dumps({"plan": {"objectives": self.objectives}})
        self.writes.append(messages[-1]["content"])
        return json.dumps(self.drafts.pop(0))


def keys_for(n: int, seed: int) -> list[str]:
    return _balanced_letters(n, random.Random(seed))


def test_happy_path_streams_verified_questions_with_balanced_keys() -> None:
    stems = [
        "What does the learning rate control?",
        "Which sign shows divergence in training?",
        "How does momentum change each update?",
        "Why shuffle the data every epoch?",
    ]
    script = Script(
        ["Explain the learning rate", "Spot divergence", "Explain momentum", "Justify shuffling"],
        [draft(s) for s in stems],
    )
    fake = FakeModel(responder=script)
    keys = keys_for(4, seed=7)
    fake.enqueue_choice(*keys)  # the blind answer agrees with each key
    quiz = QuizAgent(fake).run("gradient descent", grounded=False, n=4, seed=7)
    assert [item.question.stem for item in quiz.questions] == stems
    assert all(item.verified and item.attempts == 1 and item.issues == [] for item in quiz.questions)
    assert [item.question.answer for item in quiz.questions] == keys and sorted(keys) == list(LETTERS)
    for item in quiz.questions:  # the key moved with its text, and reasons followed their options
        q = item.question
        assert q.correct_option == "Step size of updates"
        assert set(q.wrong_reasons) == set(LETTERS) - {q.answer}
    assert quiz.questions[0].question.objective == "Explain the learning rate"
    assert quiz.metadata.seed == 7 and quiz.metadata.extra["attempts"] == [1, 1, 1, 1]


def test_failed_check_is_repaired_with_the_reason_as_feedback() -> None:
    same = ["Step size", "step size!", "Layers", "Data"]
    script = Script(
        ["Explain the learning rate"],
        [draft("What does the learning rate control?", options=same), draft("What does the learning rate control?")],
    )
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(1, seed=1))
    item = next(QuizAgent(fake).stream("gradient descent", grounded=False, n=1, seed=1))
    assert item.verified and item.attempts == 2 and item.issues == []
    assert "none" in script.writes[0].split("feedback")[-1][:40]
    assert "are the same" in script.writes[1], "the second draft must see why the first failed"


def test_question_still_failing_is_flagged_never_dropped() -> None:
    stem = "What does the learning rate control?"
    script = Script(["Explain the learning rate"], [draft(stem) for _ in range(3)])
    fake = FakeModel(responder=script)
    key = keys_for(1, seed=3)[0]
    wrong = next(letter for letter in LETTERS if letter != key)
    fake.enqueue_choice(wrong, wrong, wrong)  # the model never agrees with its key
    agent = QuizAgent(fake, max_attempts=3, repair_budget=5)
    item = next(agent.stream("gradient descent", grounded=False, n=1, seed=3))
    assert not item.verified and item.attempts == 3
    assert len(item.issues) == 1 and item.issues[0].startswith("verification:") and f"chose {wrong}" in item.issues[0]
    assert item.checks_passed
    assert "chose" in script.writes[1], "the repair prompt names the verification failure"


def test_quiz_budget_bounds_the_repairs() -> None:
    # Every draft fails verification; 4 questions with a budget of 0.5 * 4 = 2 extra drafts in all.
    stems = [f"Question {w} about the learning rate?" for w in ("one", "two", "three", "four")]
    script = Script(
        [f"Objective {w}" for w in ("one", "two", "three", "four")], [draft(s) for s in stems for _ in range(3)]
    )
    fake = FakeModel(responder=script)
    keys = keys_for(4, seed=5)
    fake.enqueue_choice(*[next(x for x in LETTERS if x != k) for k in keys for _ in range(3)])
    items = list(
        QuizAgent(fake, max_attempts=3, repair_budget=0.5).stream("gradient descent", grounded=False, n=4, seed=5)
    )
    assert [i.attempts for i in items] == [3, 1, 1, 1]
    assert sum(i.attempts for i in items) == 4 + 2 and not any(i.verified for i in items)


def test_duplicate_stem_is_caught_across_questions() -> None:
    stem = "What does the learning rate control?"
    script = Script(["Objective one", "Objective two"], [draft(stem), draft(stem), draft("Why do we shuffle data?")])
    fake = FakeModel(responder=script)
    keys = keys_for(2, seed=2)
    fake.enqueue_choice(keys[0], keys[1])
    items = list(QuizAgent(fake).stream("gradient descent", grounded=False, n=2, seed=2))
    assert items[1].attempts == 2 and items[1].verified
    assert "repeats question 1" in script.writes[2]


def test_planner_shortfall_is_filled_with_distinct_objectives() -> None:
    script = Script(
        ["Explain the learning rate", "explain the learning rate!", "#learningPlan.targetVariable", "gradient descent"],
        [
            draft(s)
            for s in (
                "What is a rate?",
                "Why do losses explode?",
                "When should training stop?",
                "Which optimiser uses momentum?",
                "How are weights initialised?",
            )
        ],
    )
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(5, seed=0))
    quiz = QuizAgent(fake).run("gradient descent", grounded=False, n=5, seed=0)
    objectives = [i.question.objective for i in quiz.questions]
    assert objectives[0] == "Explain the learning rate" and len(set(objectives)) == 5
    assert not any("#" in o or o == "gradient descent" for o in objectives), "junk and bare-topic objectives dropped"
    assert {i.question.bloom_level for i in quiz.questions} >= {"understand", "remember"}


def test_stream_yields_before_the_rest_is_written() -> None:
    script = Script(
        ["One objective", "Two objective"], [draft("First question on rates?"), draft("Second one, on data?")]
    )
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(2, seed=4))
    stream = QuizAgent(fake).stream("gradient descent", grounded=False, n=2, seed=4)
    first = next(stream)
    assert first.question.stem == "First question on rates?" and len(script.drafts) == 1
    assert next(stream).question.stem == "Second one, on data?"


def test_forward_returns_a_prediction_with_the_quiz() -> None:
    script = Script(["One objective"], [draft("First question on rates?")])
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(1, seed=4))
    pred = QuizAgent(fake)(topic="gradient descent", grounded=False, n=1, seed=4)
    assert pred.quiz.questions[0].verified
    names = [name for name, _ in QuizAgent(fake).named_predictors()]
    assert names == ["plan", "write", "blind"], "optimizers see the three predictors"


def test_every_model_call_goes_through_dspy() -> None:
    """Plan, write and the blind answer are all in DSPy's history: optimizers and inspect_history see them."""
    import dspy

    script = Script(["One objective"], [draft("First question on rates?")])
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(1, seed=4))
    agent = QuizAgent(fake)
    before = len(agent.lm.history)
    with dspy.context(trace=[]):
        agent(topic="gradient descent", grounded=False, n=1, seed=4)
        traced = [
            agent.named_predictors()[[p for _, p in agent.named_predictors()].index(p)][0]
            for p, _, _ in dspy.settings.trace
        ]
    assert traced == ["plan", "write", "blind"]
    calls = agent.lm.history[before:]
    assert len(calls) == 3 == len(fake.calls) + 1, "the blind answer is one forward pass (choose), not a decode"
    assert calls[-1]["messages"][-1]["content"].startswith("Answer this multiple-choice question")


def test_source_text_reaches_the_prompts() -> None:
    script = Script(["Explain the pivot"], [draft("What does the pivot do here?")])
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(1, seed=1))
    next(
        QuizAgent(fake).stream(
            "quicksort", grounded=False, n=1, seed=1, source_text="The pivot splits the list in two."
        )
    )
    assert "The pivot splits the list in two." in script.writes[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"topic": ""}, "topic is empty"),
        ({"topic": "x" * 50_000}, "50,000 characters"),
        ({"n": 0}, "between 1 and 50"),
        ({"n": True}, "between 1 and 50"),
        ({"difficulty": "insane"}, "difficulty must be one of"),
        ({"source_text": "notes\x00\x01binary"}, "binary"),
        ({"temperature": -1}, "temperature"),
    ],
)
def test_bad_input_raises_at_the_call_before_the_model_is_asked(kwargs, message) -> None:
    # Every rule is tested on QuizRequest itself (test_quizgen_request.py); here: the agent's shorthand checks too.
    fake = FakeModel()
    agent = QuizAgent(fake)
    args = {"topic": "overfitting", "n": 3, **kwargs}
    topic = args.pop("topic")
    with pytest.raises(QuizRequestError, match=message):
        agent.stream(topic, **args)  # raises at the call, before anything reaches the model
    with pytest.raises(QuizRequestError, match=message):
        agent.run(topic, **args)
    assert fake.calls == []


def test_a_request_and_its_shorthand_write_the_same_quiz() -> None:
    def quiz(call):
        script = Script(["Explain the pivot"], [draft("What does the pivot do here?")])
        fake = FakeModel(responder=script)
        fake.enqueue_choice(*keys_for(1, seed=1))
        return call(QuizAgent(fake)), script

    request = QuizRequest("quicksort", grounded=False, n=1, seed=1, source_text="The pivot splits the list in two.")
    typed, typed_script = quiz(lambda agent: agent.run(request))
    short, short_script = quiz(
        lambda agent: agent.run("quicksort", grounded=False, n=1, seed=1, source_text=request.source_text)
    )
    assert [i.question for i in typed.questions] == [i.question for i in short.questions]
    assert typed_script.writes == short_script.writes
    assert typed.metadata.source == "The pivot splits the list in two." and typed.metadata.seed == 1
    assert typed.metadata.extra["requested"] == 1
    with pytest.raises(TypeError, match="inside the QuizRequest"):
        QuizAgent(FakeModel()).stream(request, n=2)


def test_unusable_output_is_repaired_but_our_own_bugs_propagate() -> None:
    class Broken(Script):
        """Writes one draft that breaks the schema (twice: Model.generate retries it), then good ones."""

        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.bad = 2

        def __call__(self, messages, constraint) -> str:
            if '"plan"' not in json.dumps(constraint.schema) and self.bad:
                self.bad -= 1
                self.writes.append(messages[-1]["content"])
                return '{"question": {"stem": "cut off'
            return super().__call__(messages, constraint)

    script = Broken(["Explain the learning rate"], [draft("What does the learning rate control?")])
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(1, seed=1))
    item = next(QuizAgent(fake).stream("gradient descent", grounded=False, n=1, seed=1))
    assert item.verified and item.attempts == 2
    assert "could not be used (ConstraintViolation)" in script.writes[-1]

    def bug(messages, constraint):
        raise KeyError("a bug in our own code")

    with pytest.raises(Exception, match="a bug in our own code") as caught:  # DSPy wraps it: LMUnexpectedError
        next(QuizAgent(FakeModel(responder=bug)).stream("gradient descent", grounded=False, n=1, seed=1))
    assert isinstance(caught.value.__cause__, KeyError) and len(bug_calls(caught)) == 1, "no retry, no fallback"

    def unloadable(messages, constraint):
        raise ModelError("3000 tokens do not fit the 2048-token context: shorten the input")

    with pytest.raises(ModelError, match="shorten the input"):  # the user's to fix: ta prints it in one line
        next(QuizAgent(FakeModel(responder=unloadable)).stream("gradient descent", grounded=False, n=1, seed=1))


def bug_calls(caught) -> list:
    """The frames of the responder that raised, along the exception's cause chain."""
    import traceback

    frames = traceback.extract_tb(caught.value.__cause__.__traceback__)
    return [f for f in frames if f.name == "bug"]


@pytest.mark.parametrize("letter", LETTERS)
def test_place_key_moves_the_key_and_its_reasons(letter) -> None:
    q = make_question()
    moved = place_key(q, letter)
    assert moved.answer == letter and moved.correct_option == q.correct_option
    assert sorted(moved.options) == sorted(q.options)
    for wrong, reason in moved.wrong_reasons.items():
        assert reason == q.wrong_reasons[LETTERS[q.options.index(moved.option(wrong))]]
    Question.model_validate(moved.model_dump())


def test_blind_prompt_hides_the_key() -> None:
    q = make_question()
    prompt = blind_prompt("gradient descent", q)
    assert q.stem in prompt and all(o in prompt for o in q.options)
    assert q.explanation not in prompt and "Answer: A" not in prompt


def test_plan_asks_for_no_more_objectives_than_questions() -> None:
    script = Script(["Explain the learning rate"], [draft("What does the learning rate control?")])
    fake = FakeModel(responder=script)
    fake.enqueue_choice(*keys_for(1, seed=1))
    next(QuizAgent(fake).stream("gradient descent", grounded=False, n=1, seed=1))
    plan_schema = fake.calls[0][1].schema
    assert "plan" in plan_schema["properties"]
    assert '"maxItems":1' in json.dumps(plan_schema, separators=(",", ":"))
