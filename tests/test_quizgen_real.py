"""A real quiz on the embedded model: the model's raw text is valid, and a stated share of questions is verified.

The format claim ("every output parses") is checked where it is made: on the text the model produced, against the
schema the program asked for, before pydantic or DSPy touch it (a validated object re-dumped proves nothing).
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from quizgen import QuizAgent, checks
from quizgen.export import from_json, to_json
from quizgen.request import QuizRequest

# The ungrounded writer (the model's own questions, no course text) with one draft per question, seed 0: the 135M
# model's blind answer agrees with its own key on about one question in ten (README, Quizzes: 11%), so this test
# requires none verified; it requires every flagged question to say why. The grounded path ships only verified
# questions, and the quiz must hold every question asked for: 100%, stated and required below.
GROUNDED_VERIFIED_SHARE = 1.0


@pytest.fixture
def raw_outputs(llama_model, monkeypatch) -> list[tuple[object, str]]:
    """Every (output type, text) the model returns during the test, as it returned it."""
    calls: list[tuple[object, str]] = []
    generate = llama_model.generate

    def recording(messages, output_type=None, **sampling):
        text = generate(messages, output_type, **sampling)
        calls.append((output_type, text))
        return text

    monkeypatch.setattr(llama_model, "generate", recording)
    return calls


def _schema_calls(calls: list[tuple[object, str]]) -> list[tuple[dict, str]]:
    return [(kind, text) for kind, text in calls if isinstance(kind, dict) and "properties" in kind]


def test_real_three_question_quiz_raw_text_is_schema_valid(llama_model, raw_outputs) -> None:
    # One draft per question keeps this test short; the repair loop is covered by the fake-model tests.
    agent = QuizAgent(llama_model, max_attempts=1, repair_budget=0)
    quiz = agent.run("overfitting", grounded=False, n=3, seed=0, temperature=0.3)
    assert len(quiz.questions) == 3 and quiz.metadata.model
    documents = _schema_calls(raw_outputs)
    drafts = [(schema, text) for schema, text in documents if "question" in schema["properties"]]
    assert len(drafts) == 3, f"one constrained draft per question: {[sorted(s['properties']) for s, _ in documents]}"
    assert any("plan" in schema["properties"] for schema, _ in documents), "the plan is a constrained document too"
    for schema, text in documents:
        jsonschema.validate(json.loads(text), schema)  # the model's own text, against the schema DSPy asked for
    earlier = []
    for item, (_, text) in zip(quiz.questions, drafts, strict=True):
        q = item.question
        draft = json.loads(text)["question"]
        assert q.stem == draft["stem"].strip() or draft["stem"].strip() in q.stem, (q.stem, draft["stem"])
        assert sorted(q.options) == sorted(o.strip() for o in draft["options"]), "the key moved, the options did not"
        assert len(q.options) == 4 and q.answer in "ABCD" and set(q.wrong_reasons) == set("ABCD") - {q.answer}
        issues = checks.check_question(q, earlier)
        # Either it passes every check and its blind answer, or it says why it does not.
        if item.verified:
            assert issues == [] and item.issues == []
        else:
            assert item.issues, "a flagged question must carry its reasons"
            assert set(issues) <= set(item.issues)
        assert item.attempts == 1
        earlier.append(q)
    print(f"\nungrounded, seed 0: {sum(i.verified for i in quiz.questions)}/3 verified")
    assert from_json(to_json(quiz)) == quiz


def test_real_grounded_quiz_holds_every_question_asked_all_verified(llama_model) -> None:
    agent = QuizAgent(llama_model)
    quiz = agent.run(QuizRequest("overfitting", n=3, seed=0))
    verified = sum(item.verified for item in quiz.questions)
    assert len(quiz.questions) == 3, "the starter course covers overfitting: a quiz of 3 holds 3"
    assert verified >= GROUNDED_VERIFIED_SHARE * 3, [item.issues for item in quiz.questions]
    assert all(item.question.source is not None for item in quiz.questions)
