"""Constraints to outlines logits processors, compiled once per (model, constraint).

Both in-process backends (llama.cpp and transformers) are "steerable" outlines models: a
constraint becomes a logits processor that masks every token which would break it. Compiling a
JSON schema's index takes from milliseconds to seconds, so each model keeps an LRU cache of its
generators keyed by the constraint.

Grammar engines (``llguidance``, ``outlines_core``, ``xgrammar``) are outlines' own; which one a
model uses is a load option (llguidance by default: it builds masks lazily, while outlines_core
compiles a whole index first). ``benchmarks/speed.py`` measures them side by side.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any

from tutor.models.constraints import WHITESPACE_PATTERN, Choices, Constraint, Json, Pattern

GRAMMAR_BACKENDS = ("outlines_core", "llguidance", "xgrammar")


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


def to_outlines_type(constraint: Constraint, grammar_backend: str) -> Any:
    """The outlines output type for ``constraint`` on ``grammar_backend``."""
    from outlines.types import Regex

    if isinstance(constraint, Json):
        return Regex(json_regex(constraint))  # one regex for every engine: compact whitespace, bounded digits
    if isinstance(constraint, Choices | Pattern):
        return Regex(to_regex(constraint))
    raise TypeError(f"unknown constraint {constraint!r}")


class GeneratorCache:
    """outlines generators for one model, compiled on first use, least recently used evicted."""

    def __init__(self, outlines_model: Any, grammar_backend: str = "llguidance", maxsize: int = 32) -> None:
        if grammar_backend not in GRAMMAR_BACKENDS:
            raise ValueError(f"unknown grammar backend {grammar_backend!r}; use one of {GRAMMAR_BACKENDS}")
        self.outlines_model = outlines_model
        self.grammar_backend = grammar_backend
        self.maxsize = maxsize
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self.compiled = 0  # how many generators were built (a cache miss each); tests read it

    def get(self, constraint: Constraint | None) -> Any:
        """The generator for ``constraint`` (``None``: unconstrained)."""
        from outlines import Generator

        key = "free" if constraint is None else constraint.key
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if constraint is None:
            generator = Generator(self.outlines_model)
        else:
            output_type = to_outlines_type(constraint, self.grammar_backend)
            generator = Generator(self.outlines_model, output_type, backend=self.grammar_backend)
        self.compiled += 1
        self._cache[key] = generator
        if len(self._cache) > self.maxsize:
            self._cache.popitem(last=False)
        return generator
