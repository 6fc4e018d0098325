"""Quiz JSON import (``quizgen.export.from_json``), fed generated documents: a Quiz or an InputError, never a crash.

Documents are quizzes this project wrote with one value somewhere changed to anything JSON holds (or removed),
JSON-shaped text (deep nesting, NaN, lone surrogate escapes, duplicate keys, a BOM) and raw bytes. A document that
imports is a quiz every exporter handles: it round-trips through JSON and writes in every format.
"""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from quizgen.export import FORMATS, dumps, from_json, to_json
from quizgen.schema import Quiz
from tests.fuzzing import budget, clear_error_or_works, json_values, mutate
from tests.test_fuzz_export import REGRESSIONS, one, q

PLAIN = json.loads(to_json(one(q())))


def check_import(text: str | bytes) -> None:
    """Import ``text``: a quiz that round-trips and exports in every format, or an InputError with a message."""
    quiz = clear_error_or_works(lambda: from_json(text))
    if quiz is None:
        return
    assert isinstance(quiz, Quiz)
    assert from_json(to_json(quiz)) == quiz
    for fmt in FORMATS:
        dumps(quiz, fmt)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A quiz document this project wrote, with one value inside it replaced or removed (or not).

    The quizzes are the export tests' hand-picked ones (sources, hostile strings): generating whole quizzes costs
    seconds per hundred, and the mutation, not the quiz, is what this test varies.
    """
    doc = json.loads(to_json(draw(st.sampled_from(REGRESSIONS))))
    return json.dumps(mutate(draw, doc, json_values | st.sampled_from(["A", "E", "easy", "", "x" * 400, None])))


# Hand-picked: a lone surrogate escape where the schema does not clean strings (topic, issues, metadata) and NaN
# where JSON cannot write it back; both are refused on import (pydantic's parser and allow_inf_nan=False).
@budget(100)
@given(documents())
@example(json.dumps({**PLAIN, "topic": "\ud800"}))
@example(json.dumps({**PLAIN, "metadata": {"model": "\udfff", "extra": {"\ud800": 1}}}))
@example(json.dumps({**PLAIN, "questions": [{**PLAIN["questions"][0], "issues": ["\ud83d"]}]}))
@example(json.dumps({**PLAIN, "questions": [{**PLAIN["questions"][0], "seconds": float("nan")}]}))
@example(json.dumps({**PLAIN, "metadata": {"extra": {"": float("inf")}}}))  # found in a full run: not written back
def test_a_changed_quiz_imports_or_says_where_it_breaks(text: str) -> None:
    check_import(text)


shapes = st.sampled_from(
    ["", "{}", "[]", "null", '{"topic": "t"}', '{"topic": "t", "topic": 1}', "\ufeff{}", "[" * 5000, '{"a": NaN}']
)


@budget(100)
@given(shapes | st.text(max_size=40) | json_values.map(json.dumps) | st.binary(max_size=80))
@example(b"\xff\xfe{}")
@example('{"topic": "x"}'.encode("utf-16"))
@example("[" * 100_000)
def test_any_text_or_bytes_imports_or_is_an_input_error(text: str | bytes) -> None:
    check_import(text)
