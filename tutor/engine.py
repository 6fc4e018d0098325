"""A DSPy engine over our Model API: ``dspy.LM(engine=TutorEngine(model))``.

DSPy 3.4 hands an engine one canonical ``dspy.lm15.Request``. Messages, temperature, top_p, seed and
max tokens pass straight through to :meth:`Model.generate`; ``Request.config.response_format``
(a JSON schema, which DSPy's JSONAdapter builds from the signature's output fields) becomes a
constrained output type, so every ``dspy.Predict`` parses, whatever the model's size.

A schema whose one property is a *judgment* (a string ``enum``: lm15's convention for "declared keys in, a
distribution out"), asked for greedily, is answered by :meth:`Model.choose`: one forward pass reads the
distribution over the keys and the most likely key is returned as ``{"name": "KEY"}``. That is what greedy
constrained decoding would pick for single-token keys, at the cost of one pass, and it lets a multiple-choice
step (the quiz agent's blind answer) run through DSPy, where optimizers and ``dspy.inspect_history`` see it.

Use :func:`make_lm` rather than building ``dspy.LM`` by hand: it sets the JSONAdapter-friendly
capabilities and turns DSPy's on-disk cache off (two quizzes on one topic should differ).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tutor.models.base import Model
from tutor.models.constraints import OutputTypeError

DEFAULT_MAX_TOKENS = 1024


def constraint_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for (``json_object``: any object; none: free text)."""
    if not response_format:
        return None
    if isinstance(response_format, type):  # a pydantic model passed straight through
        return response_format.model_json_schema()
    kind = response_format.get("type")
    if kind == "json_schema":
        # lm15 carries {"type", "name", "schema", "strict"}; OpenAI's wire nests it under "json_schema".
        spec = response_format.get("json_schema", response_format)
        schema = spec.get("schema")
        if not isinstance(schema, dict) or not schema:
            raise OutputTypeError(f"response_format json_schema carries no schema: {response_format!r}")
        return schema
    if kind == "json_object":
        return {"type": "object"}
    if kind == "text":
        return None
    raise OutputTypeError(f"unsupported response_format {response_format!r}: use json_schema, json_object or text")


def judgment_of(schema: dict[str, Any] | None) -> tuple[str, list[str]] | None:
    """(property, keys) when ``schema`` is an object whose only property is a string enum; else None."""
    if not schema or schema.get("type") not in (None, "object"):
        return None
    props = schema.get("properties")
    if not isinstance(props, dict) or len(props) != 1:
        return None
    ((name, prop),) = props.items()
    keys = prop.get("enum") if isinstance(prop, dict) else None
    if not isinstance(keys, list) or len(keys) < 2 or not all(isinstance(k, str) and k for k in keys):
        return None
    return name, list(keys)


def request_messages(request: Any) -> list[dict[str, str]]:
    """The chat in a Request, as role/content dicts (system first)."""
    messages = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        role = {"developer": "system", "tool": "user"}.get(message.role, message.role)
        messages.append({"role": role, "content": message.text or ""})
    return messages


def request_sampling(config: Any, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Model.generate keyword arguments from a Request's config (over the engine's defaults)."""
    sampling: dict[str, Any] = {**(defaults or {}), "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS}
    if config.temperature is not None:
        sampling["temperature"] = float(config.temperature)
    if config.top_p is not None:
        sampling["top_p"] = float(config.top_p)
    if config.seed is not None:
        sampling["seed"] = int(config.seed)
    return sampling


class TutorEngine:
    """The engine DSPy calls; owns nothing but a reference to the model."""

    supports_response_schema = True
    supports_function_calling = False
    supports_reasoning = False
    supported_params = frozenset({"response_format", "temperature", "max_tokens", "top_p", "seed"})

    def __init__(self, model: Model, **sampling: Any) -> None:
        """Serve ``model``; ``sampling`` (e.g. ``repetition_penalty=1.2``) applies to every request."""
        self.model = model
        self.sampling = sampling

    def complete(self, request: Any) -> Any:
        """Answer one Request with one Response."""
        from dspy.clients.engines.base import validate_request

        validate_request(request)
        schema = constraint_of(request.config.response_format)
        judgment = judgment_of(schema)
        if judgment is not None and not request.config.temperature:
            name, keys = judgment
            choice = self.model.choose([request_messages(request)], keys)[0]
            return self._response(json.dumps({name: choice.answer}))
        text = self.model.generate(request_messages(request), schema, **request_sampling(request.config, self.sampling))
        return self._response(text)

    def stream(self, request: Any) -> Iterator[Any]:
        """Stream one Request: a start event, text deltas as they decode, an end event."""
        from dspy.clients.engines.base import validate_request
        from dspy.lm15 import StreamDeltaEvent, StreamEndEvent, StreamStartEvent, TextDelta, Usage

        validate_request(request)
        schema = constraint_of(request.config.response_format)
        yield StreamStartEvent(model=self.model.name)
        pieces = self.model.stream(request_messages(request), schema, **request_sampling(request.config, self.sampling))
        for piece in pieces:
            yield StreamDeltaEvent(delta=TextDelta(text=piece, part_index=0))
        yield StreamEndEvent(finish_reason="stop", usage=Usage(input_tokens=0, output_tokens=0, total_tokens=0))

    def close(self) -> None:
        """Nothing to free: the model belongs to the caller."""

    def _response(self, text: str) -> Any:
        from dspy.lm15 import Message, Response, TextPart, Usage

        return Response(
            id=None,
            model=self.model.name,
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=0, output_tokens=0, total_tokens=0),
        )


def make_lm(model: Model, sampling: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """A ``dspy.LM`` that runs ``model`` through :class:`TutorEngine` (no disk cache, no retries).

    ``sampling`` holds Model-level defaults DSPy has no field for (``repetition_penalty``);
    ``kwargs`` go to ``dspy.LM`` (``max_tokens``, ``temperature``, ...).
    """
    import dspy

    kwargs.setdefault("cache", False)
    kwargs.setdefault("num_retries", 0)
    return dspy.LM(f"tutor/{model.backend}", engine=TutorEngine(model, **(sampling or {})), **kwargs)


def keep_no_call_history() -> None:
    """Stop DSPy recording every model call (prompt, reply) in its in-memory histories.

    DSPy keeps up to 10,000 calls globally and per LM: in a server that answers for days that is memory
    growing with every request, holding students' questions. ``lm.inspect_history()`` is for debugging a
    program, not for serving it. Call it from the thread that starts the server (DSPy's rule for configure).
    """
    import dspy

    dspy.configure(disable_history=True)
