"""Output types to constraints: pure functions, no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from tutor.models.constraints import (
    Choices,
    ConstraintViolation,
    Json,
    OutputTypeError,
    Pattern,
    Regex,
    to_constraint,
)


class Point(BaseModel):
    x: int
    label: str


def test_every_output_type_normalises(tmp_path: Path) -> None:
    schema_file = tmp_path / "s.json"
    schema_file.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}}))
    assert isinstance(to_constraint(Point), Json)
    assert to_constraint(Point).schema["properties"]["x"]["type"] == "integer"
    assert isinstance(to_constraint({"type": "string"}), Json)
    assert to_constraint(schema_file).schema["properties"]["a"] == {"type": "integer"}
    assert to_constraint(["yes", "no"]) == Choices(("yes", "no"))
    assert to_constraint(Regex(r"\d+")) == Pattern(r"\d+")
    assert to_constraint(None) is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (42, "unsupported output type"),
        ([], "non-empty list"),
        (["a", "a"], "distinct"),
        ({"type": "no-such-type"}, "not a valid JSON schema"),
        (Path("/nonexistent/schema.json"), "no schema file"),
    ],
)
def test_bad_output_types_say_what_to_do(bad: object, message: str) -> None:
    with pytest.raises(OutputTypeError, match=message):
        to_constraint(bad)  # type: ignore[arg-type]


def test_bad_regex_and_bad_schema_file(tmp_path: Path) -> None:
    with pytest.raises(OutputTypeError, match="invalid regex"):
        Regex("(")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(OutputTypeError, match="not a JSON file"):
        to_constraint(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(OutputTypeError, match="not a JSON schema object"):
        to_constraint(listed)


def test_checks_accept_valid_and_reject_invalid_text() -> None:
    point = to_constraint(Point)
    point.check('{"x": 1, "label": "a"}')
    with pytest.raises(ConstraintViolation, match="not JSON"):
        point.check('{"x": 1, "label": "a"')
    with pytest.raises(ConstraintViolation, match="does not match the schema"):
        point.check('{"x": "one", "label": "a"}')
    Choices(("A", "B")).check("A")
    with pytest.raises(ConstraintViolation):
        Choices(("A", "B")).check("C")
    Pattern(r"[0-9]{3}").check("123")
    with pytest.raises(ConstraintViolation):
        Pattern(r"[0-9]{3}").check("1234")


def test_schema_property_order_is_kept() -> None:
    # Properties are generated in schema order: reasoning must come before the answer.
    schema = {"type": "object", "properties": {"reasoning": {"type": "string"}, "answer": {"type": "string"}}}
    assert list(to_constraint(schema).schema["properties"]) == ["reasoning", "answer"]


def test_bounded_gives_every_free_string_a_share_of_the_budget() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "maxLength": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "kind": {"type": "string", "enum": ["x", "y"]},
        },
    }
    bounded = to_constraint(schema).bounded(max_tokens=332)
    props = bounded.schema["properties"]
    assert props["a"]["maxLength"] == (332 - 32) // 3 - 4  # a + two array items
    assert props["tags"]["items"]["maxLength"] == props["a"]["maxLength"]
    assert props["b"]["maxLength"] == 5 and "maxLength" not in props["kind"]
    assert to_constraint({"type": "integer"}).bounded(100) == to_constraint({"type": "integer"})


def test_cache_key_ignores_titles_but_not_a_property_named_title() -> None:
    plain = to_constraint({"type": "object", "properties": {"a": {"type": "string"}}})
    titled = to_constraint({"type": "object", "title": "T", "properties": {"a": {"type": "string", "title": "A"}}})
    assert plain.key == titled.key
    with_title_prop = to_constraint({"type": "object", "properties": {"title": {"type": "string"}}})
    assert "title" in with_title_prop.key


def test_bounded_caps_arrays_without_max_items() -> None:
    bounded = to_constraint({"type": "array", "items": {"type": "integer"}, "minItems": 2}).bounded(100)
    assert bounded.schema["maxItems"] == 8 and bounded.schema["minItems"] == 2


def test_a_string_longer_than_the_budget_allows_is_a_clear_error_not_a_grammar_crash() -> None:
    from tutor.models.constraints import Json, OutputTypeError

    schema = {"type": "object", "properties": {"a": {"type": "string", "minLength": 400}}, "required": ["a"]}
    with pytest.raises(OutputTypeError, match="raise max_tokens to about 436"):
        Json(json.dumps(schema)).bounded(64)  # was outlines_core's ValueError "maxLength must be >= minLength"
    bounded = json.loads(Json(json.dumps(schema)).bounded(512).schema_text)
    assert bounded["properties"]["a"] == {"type": "string", "minLength": 400, "maxLength": 476}
