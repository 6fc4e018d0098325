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
