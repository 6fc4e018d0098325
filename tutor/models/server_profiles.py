"""What each OpenAI-compatible server understands: one profile per flavour, and how to tell them apart.

The servers share ``/v1/chat/completions`` and differ in everything this project relies on (checked in
their source, late 2026):

==================  ==============================================  ===========================  ==============
server              constraints                                      tokenizer                    log-likelihood
==================  ==============================================  ===========================  ==============
vLLM                ``structured_outputs: {json|regex|choice}``      ``POST /tokenize``           completions echo
SGLang              ``response_format`` json_schema, ``regex``       ``POST /v1/tokenize``        completions echo
llama-server        nested ``response_format.json_schema.schema``,   ``POST /tokenize``           none (no echo)
                    ``grammar`` (GBNF)
llama-cpp-python    ``response_format: {json_object, schema}``,      ``POST /extras/tokenize``    forced (below)
                    ``grammar`` (GBNF)
==================  ==============================================  ===========================  ==============

Every server accepts unknown request fields silently (vLLM logs them), so a misspelt or outdated field
means unconstrained text: :meth:`OpenAIServerModel.self_check` proves the mapping at load time.

llama-cpp-python's ``echo`` log-probabilities are off by one position (each prompt token is scored under the
distribution that follows it), so its log-likelihoods are read from a *generated* continuation instead: the
context is the prompt and a GBNF grammar forces the continuation's text, whose tokens' log-probabilities
(raw, before the grammar) are then exactly those of the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tutor.models import gbnf
from tutor.models.base import ModelError
from tutor.models.constraints import Choices, Constraint, Json, Pattern


class CapabilityError(ModelError):
    """The server cannot do what was asked; the message names the server and what to use instead."""


class Profile:
    """A generic OpenAI-compatible server: JSON schemas through ``response_format``, nothing else assumed."""

    name = "openai"  # what --server-profile names it
    label = "this OpenAI-compatible server"  # how errors name it
    loglik: str | None = None  # "echo" (completions echo + logprobs), "forced" (see module doc), or None
    label_ids = False  # may ask for exact label-token log-probabilities (vLLM's logprob_token_ids)
    tokenize_path: str | None = None  # relative to the server root (the URL without /v1)
    repetition_field = "repetition_penalty"  # the sampling field for Sampling.repetition_penalty

    def fields(self, constraint: Constraint | None) -> dict[str, Any]:
        """The request fields that carry ``constraint`` on this server (empty for free text)."""
        if constraint is None:
            return {}
        if isinstance(constraint, Json):
            return self.json_fields(constraint.schema)
        if isinstance(constraint, Choices):
            return self.choice_fields(list(constraint.options))
        if isinstance(constraint, Pattern):
            return self.regex_fields(constraint.pattern)
        raise CapabilityError(f"{self.label} has no mapping for {type(constraint).__name__}")

    def json_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        """OpenAI's structured outputs form."""
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}}

    def choice_fields(self, options: list[str]) -> dict[str, Any]:
        """Choices: none by default (no standard field)."""
        raise CapabilityError(
            f"{self.label} offers no choice constraint: serve the model with vLLM, SGLang or llama.cpp "
            "(or pass --server-profile if it is one of them)"
        )

    def regex_fields(self, pattern: str) -> dict[str, Any]:
        """Regular expressions: none by default."""
        raise CapabilityError(
            f"{self.label} offers no regex constraint: serve the model with vLLM, SGLang or llama.cpp "
            "(or pass --server-profile if it is one of them)"
        )

    def tokenize_body(self, text: str, special: bool) -> dict[str, Any]:
        """The body of a tokenize request (``special``: add BOS as the model's tokenizer does)."""
        raise CapabilityError(f"{self.label} has no tokenizer endpoint")

    def no_loglik(self) -> CapabilityError:
        """The error for a server without prompt log-probabilities."""
        return CapabilityError(
            f"{self.label} returns no log-probabilities of a given text (no echo), so it cannot score "
            "continuations: use --mode letter or cot, or serve the model with vLLM, SGLang or llama-cpp-python"
        )


class VLLM(Profile):
    """vLLM >= 0.12 (``guided_*`` fields were removed then; older servers ignore ``structured_outputs``)."""

    name, label = "vllm", "vLLM"
    loglik, label_ids, tokenize_path = "echo", True, "/tokenize"

    def json_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``structured_outputs.json``; free whitespace off (small models loop on it)."""
        return {"structured_outputs": {"json": schema, "disable_any_whitespace": True}}

    def choice_fields(self, options: list[str]) -> dict[str, Any]:
        """``structured_outputs.choice``."""
        return {"structured_outputs": {"choice": options}}

    def regex_fields(self, pattern: str) -> dict[str, Any]:
        """``structured_outputs.regex``."""
        return {"structured_outputs": {"regex": pattern}}

    def tokenize_body(self, text: str, special: bool) -> dict[str, Any]:
        """The body of vLLM's ``/tokenize``."""
        return {"prompt": text, "add_special_tokens": special}


class SGLang(Profile):
    """SGLang: ``response_format`` json_schema, a top-level ``regex``; choices become a regex."""

    name, label = "sglang", "SGLang"
    loglik, tokenize_path = "echo", "/v1/tokenize"

    def choice_fields(self, options: list[str]) -> dict[str, Any]:
        """No choice field: an alternation of escaped literals."""
        return self.regex_fields("(" + "|".join(re.escape(o) for o in options) + ")")

    def regex_fields(self, pattern: str) -> dict[str, Any]:
        """The top-level ``regex`` field."""
        return {"regex": pattern}

    def tokenize_body(self, text: str, special: bool) -> dict[str, Any]:
        """SGLang's ``/v1/tokenize``."""
        return {"prompt": text, "add_special_tokens": special}


class LlamaServer(Profile):
    """llama.cpp's ``llama-server``: nested json_schema (the flat form is silently replaced by ``{}``), GBNF."""

    name, label = "llama-server", "llama.cpp's llama-server"
    tokenize_path, repetition_field = "/tokenize", "repeat_penalty"

    def json_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``response_format.json_schema.schema``, nested."""
        return {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}

    def choice_fields(self, options: list[str]) -> dict[str, Any]:
        """A GBNF alternation."""
        return {"grammar": gbnf.choices(options)}

    def regex_fields(self, pattern: str) -> dict[str, Any]:
        """The regex translated to GBNF."""
        return {"grammar": gbnf.regex(pattern)}

    def tokenize_body(self, text: str, special: bool) -> dict[str, Any]:
        """llama-server's ``/tokenize``."""
        return {"content": text, "add_special": special, "parse_special": True}


class LlamaCppPython(LlamaServer):
    """llama-cpp-python's server: ``response_format: {type: json_object, schema}``, GBNF, forced log-likelihoods."""

    name, label = "llama-cpp-python", "llama-cpp-python's server"
    loglik, tokenize_path = "forced", "/extras/tokenize"

    def json_fields(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A GBNF grammar built here with the server's own converter, its string characters corrected.

        The server turns ``response_format: {type: json_object, schema}`` into GBNF with a copy of llama.cpp's
        old converter whose string characters include raw control characters (a newline inside a string:
        invalid JSON, 1 in 5 answers of the validity schemas), and falls back to any JSON when the schema does
        not convert. Built here, the grammar is checked and corrected; without llama-cpp-python on this side
        the server's form is sent, and every answer is still validated here.
        """
        try:
            from llama_cpp.llama_grammar import json_schema_to_gbnf
        except ImportError:
            return {"response_format": {"type": "json_object", "schema": schema}}
        numbers: list[str] = []
        grammar = json_schema_to_gbnf(json.dumps(_mark_numbers(schema, numbers)))
        if _LOOSE_CHAR in grammar:
            grammar = grammar.replace(_LOOSE_CHAR, _JSON_CHAR)
        for k, expression in enumerate(numbers):  # its converter ignores minimum and maximum
            grammar = grammar.replace(f'"\\"{_NUMBER_MARK}{k}__\\""', expression)
        return {"grammar": grammar}

    def tokenize_body(self, text: str, special: bool) -> dict[str, Any]:
        """``/extras/tokenize`` always adds BOS where the model does (the caller strips it)."""
        return {"input": text}


_NUMBER_MARK = "__ta_number_"


def _mark_numbers(node: Any, found: list[str]) -> Any:
    """``node`` with each bounded number a constant marker, its exact GBNF appended to ``found``."""
    if isinstance(node, list):
        return [_mark_numbers(n, found) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") in ("number", "integer") and ("minimum" in node or "maximum" in node):
        expression = gbnf.number(node.get("minimum"), node.get("maximum"), node["type"] == "integer")
        if expression is not None:
            found.append(expression)
            return {"const": f"{_NUMBER_MARK}{len(found) - 1}__"}
    return {k: _mark_numbers(v, found) for k, v in node.items()}


# A JSON string character as llama-cpp-python's converter writes it, and as JSON allows it (no control characters).
_LOOSE_CHAR = r'char ::= [^"\\] |'
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'

PROFILES: dict[str, type[Profile]] = {p.name: p for p in (VLLM, SGLang, LlamaServer, LlamaCppPython, Profile)}

# /v1/models ``owned_by`` as each server writes it.
OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama-server", "me": "llama-cpp-python"}

# Endpoints only one flavour has, tried in order when ``owned_by`` says nothing (a proxy in front, say).
PROBES = (("GET", "/version", "vllm"), ("GET", "/get_server_info", "sglang"), ("GET", "/props", "llama-server"))


def profile_named(name: str) -> Profile:
    """The profile ``name`` (``--server-profile``)."""
    if name not in PROFILES:
        raise ModelError(f"unknown server profile {name!r}: use one of {', '.join(PROFILES)}")
    return PROFILES[name]()


def detect(models: dict[str, Any], probe: Callable[[str, str], bool]) -> Profile:
    """The profile of a server from its ``/v1/models`` answer, else from which endpoints it has.

    ``probe(method, path)`` says whether the server answers ``path`` (relative to its root) with 2xx.
    """
    for card in models.get("data") or []:
        owner = str(card.get("owned_by", "")).lower()
        if owner in OWNERS:
            return profile_named(OWNERS[owner])
    for method, path, name in PROBES:
        if probe(method, path):
            return profile_named(name)
    if probe("POST", "/extras/tokenize"):
        return LlamaCppPython()
    return Profile()
