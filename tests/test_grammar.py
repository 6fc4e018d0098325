"""The grammar module alone: engine names checked in one place, a lazy tokenizer, one bounded cache, a free steer."""

from __future__ import annotations

import pytest

from tutor.models import ModelError
from tutor.models.constraints import to_constraint
from tutor.models.grammar import FREE, Grammar


def _grammar(built: list[int], engine: str = "llguidance", maxsize: int = 2) -> Grammar:
    def tokenizer() -> object:
        built.append(1)
        return object()

    tokenizers = {"llguidance": tokenizer, "outlines_core": tokenizer}
    return Grammar(engine, tokenizers, n_vocab=10, eos=0, backend="test", maxsize=maxsize)


def test_an_engine_the_backend_does_not_offer_is_a_model_error_listing_those_it_does() -> None:
    with pytest.raises(ModelError, match="test backend supports grammar_backend 'llguidance' or 'outlines_core'"):
        _grammar([], engine="xgrammar")
    with pytest.raises(ModelError, match="not 'regex'"):
        _grammar([], engine="regex")


def test_free_text_gets_the_null_steer_and_builds_no_tokenizer() -> None:
    built: list[int] = []
    grammar = _grammar(built)
    steer = grammar.steer(None)
    assert steer is FREE and steer.allowed() is None and steer.eos is None
    steer.advance(3)  # nothing to track, nothing raised
    assert built == [] and grammar.compiled == 0 and len(grammar) == 0


def test_one_bounded_lru_cache_of_compiled_grammars() -> None:
    built: list[int] = []
    grammar = _grammar(built, maxsize=2)
    a, b, c = (to_constraint(options) for options in (["a", "b"], ["c", "d"], ["e", "f"]))
    assert grammar.compile(a) == ("regex", "a|b")
    grammar.compile(b)
    grammar.compile(a)  # a hit: a becomes the most recently used
    assert grammar.compiled == 2
    grammar.compile(c)  # evicts b, the least recently used
    assert len(grammar) == 2 and grammar.compiled == 3
    grammar.compile(a)
    assert grammar.compiled == 3, "a was kept"
    grammar.compile(b)
    assert grammar.compiled == 4, "b was evicted and compiled again"
    assert built == [1], "the engine's tokenizer is built once, on first use"


def test_numeric_ranges_take_llguidances_json_mode() -> None:
    grammar = _grammar([])
    kind, _ = grammar.compile(to_constraint({"type": "object", "properties": {"p": {"type": "number", "maximum": 1}}}))
    assert kind == "json_schema"
