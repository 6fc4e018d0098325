"""A real quiz on the embedded model: every question schema-valid, and each one passes or is flagged."""

from __future__ import annotations

import jsonschema

from quizgen import QuizAgent, checks
from quizgen.export import from_json, to_json
from quizgen.schema import Question


def test_real_three_question_quiz_is_valid(llama_model) -> None:
    # One draft per question keeps this test short; the repair loop is covered by the fake-model tests.
    agent = QuizAgent(llama_model, max_attempts=1, repair_budget=0)
    quiz = agent.run("overfitting", grounded=False, n=3, seed=0, temperature=0.3)
    assert len(quiz.questions) == 3 and quiz.metadata.model
    schema = Question.model_json_schema()
    earlier = []
    for item in quiz.questions:
        q = item.question
        jsonschema.validate(q.model_dump(mode="json"), schema)
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
    assert from_json(to_json(quiz)) == quiz
