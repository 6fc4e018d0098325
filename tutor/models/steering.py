"""Constraints to the grammars the engines are given: a regex, or llguidance's own JSON-schema grammar.

Every engine (see :mod:`tutor.models.grammar`) is handed the same regex for a constraint: choices
escaped and joined, a pattern as it is, a JSON schema through outlines_core's schema-to-regex with
compact whitespace and bounded digit runs. llguidance alone takes its own JSON mode when a schema sets
numeric ranges, which the regex path cannot express. These are pure functions; compiling and caching
what they return is the grammar module's job.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tutor.models.constraints import WHITESPACE_PATTERN, Choices, Constraint, Json, Pattern


def to_regex(constraint: Choices | Pattern) -> str:
    """The regular expression a choices or pattern constraint stands for."""
    if isinstance(constraint, Choices):
        return "|".join(re.escape(option) for option in constraint.options)
    return constraint.pattern


MAX_DIGITS = 15  # a float64 holds ~15-17 significant digits; more is a model stuck on "9999..."


def json_regex(constraint: Json) -> str:
    """The regex outlines_core compiles for a JSON schema, with compact whitespace and bounded digit runs.

    JSON schema cannot bound how many digits a number has, and a small model will happily write
    ``0.99999...`` until the token limit. Every unbounded digit run becomes at most MAX_DIGITS digits:
    the accepted texts are a subset of the schema's, so they still validate.
    """
    from outlines_core.json_schema import build_regex_from_schema

    regex = build_regex_from_schema(constraint.schema_text, WHITESPACE_PATTERN)
    return regex.replace("[0-9]*", f"[0-9]{{0,{MAX_DIGITS}}}").replace("[0-9]+", f"[0-9]{{1,{MAX_DIGITS}}}")


def grammar_regex(constraint: Constraint) -> str:
    """The regex any grammar engine is given for ``constraint``."""
    return json_regex(constraint) if isinstance(constraint, Json) else to_regex(constraint)  # type: ignore[arg-type]


_RANGE_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# llguidance's JSON mode with compact separators, like WHITESPACE_PATTERN without the optional space.
_LLG_JSON_OPTIONS = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}


def guidance_grammar(constraint: Constraint) -> tuple[str, str]:
    """What llguidance is given: ``("regex", ...)``, or ``("json_schema", ...)`` when numbers carry ranges.

    The regex path (outlines_core's schema-to-regex) bounds digit runs but ignores numeric ranges, so a
    ``"maximum": 1`` would let ``99`` through. llguidance's own JSON mode enforces ranges; it cannot bound
    fraction digits, so only schemas that need ranges take it.
    """
    if isinstance(constraint, Json) and _has_key(constraint.schema, _RANGE_KEYWORDS):
        schema = constraint.schema
        _close_objects(schema)
        return "json_schema", json.dumps({**schema, "x-guidance": _LLG_JSON_OPTIONS})
    return "regex", grammar_regex(constraint)


def _close_objects(node: Any) -> None:
    """No properties beyond the listed ones (as the regex path has it): extra ones would be unbounded."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


def _has_key(node: Any, keys: tuple[str, ...]) -> bool:
    if isinstance(node, dict):
        return any(k in node and not isinstance(node[k], dict) for k in keys) or any(
            _has_key(v, keys) for v in node.values()
        )
    if isinstance(node, list):
        return any(_has_key(v, keys) for v in node)
    return False
