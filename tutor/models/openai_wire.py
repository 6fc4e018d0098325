"""The OpenAI wire format read and written as pure functions (no HTTP): answers, log-probabilities, SSE lines.

Kept apart from :mod:`tutor.models.openai` so each can be tested alone: every function takes or returns plain
JSON values as the servers send them.
"""

from __future__ import annotations

import json
from typing import Any

from tutor.errors import InputError
from tutor.models.base import ModelError


def harness_split(context: str, continuation: str) -> tuple[str, str]:
    """Trailing spaces of the context move to the continuation (see :func:`tutor.models.base.split_continuation`)."""
    stripped = context.rstrip(" ")
    continuation = context[len(stripped) :] + continuation
    if not continuation:
        raise InputError("empty continuation: nothing to score")
    return stripped, continuation


def content(data: dict[str, Any]) -> str:
    """The text of a chat answer (``choices[0].message.content``)."""
    try:
        return data["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"the server's answer has no choices[0].message.content: {str(data)[:200]}") from exc


def text(data: dict[str, Any]) -> str:
    """The text of a completions answer (``choices[0].text``)."""
    try:
        return data["choices"][0]["text"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"the server's answer has no choices[0].text: {str(data)[:200]}") from exc


def chat_rows(data: dict[str, Any]) -> list[dict[str, float]]:
    """Per generated position: token text -> log-probability (the chosen token and its top alternatives)."""
    content = (data["choices"][0].get("logprobs") or {}).get("content") or []
    rows = []
    for position in content:
        row = {str(t["token"]): float(t["logprob"]) for t in position.get("top_logprobs") or []}
        row.setdefault(str(position["token"]), float(position["logprob"]))
        rows.append(row)
    return rows


def completion_rows(data: dict[str, Any]) -> list[dict[str, float]]:
    """Per generated position of a completions answer: token text -> log-probability."""
    logprobs = data["choices"][0].get("logprobs") or {}
    rows = []
    for token, value, top in zip(
        logprobs.get("tokens") or [],
        logprobs.get("token_logprobs") or [],
        logprobs.get("top_logprobs") or [],
        strict=False,
    ):
        row = {str(k): float(v) for k, v in (top or {}).items()}
        if value is not None:
            row.setdefault(str(token), float(value))
        rows.append(row)
    return rows


def token_logprobs(data: dict[str, Any], chat: bool) -> list[tuple[str, float]]:
    """(token text, log-probability) of each generated token, from a chat or a completions answer."""
    logprobs = data["choices"][0].get("logprobs") or {}
    if chat:
        return [(str(c["token"]), float(c["logprob"])) for c in logprobs.get("content") or []]
    pairs = zip(logprobs.get("tokens") or [], logprobs.get("token_logprobs") or [], strict=False)
    return [(str(t), float(v)) for t, v in pairs if v is not None]


def sse_event(line: str) -> tuple[str, str | None] | None:
    """One server-sent-events line: (its text, its finish reason or None); ``('', None)`` for none; None at ``[DONE]``.

    A stream's last answer event carries a finish reason (``stop``, ``length``); a stream that reaches ``[DONE]``
    without one was cut short by the server.
    """
    if not line.startswith("data:"):
        return "", None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None
    event = json.loads(payload)
    choices = event.get("choices") or []
    if not choices:
        return "", None
    return (choices[0].get("delta") or {}).get("content") or "", choices[0].get("finish_reason")


def message(response: Any) -> str:
    """The error message in a refused request's body (OpenAI's ``error.message``, FastAPI's ``detail``)."""
    try:
        data = response.json()
    except (json.JSONDecodeError, ValueError):
        return response.text[:300]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)[:300]
    return str(error)[:300]


def retry_after(response: Any) -> str:
    """`` (retry-after=S)`` from an overloaded server's header (at most 30 s), else an empty string."""
    value = response.headers.get("retry-after")
    try:
        return f" (retry-after={min(float(value), 30.0)})" if value else ""
    except ValueError:
        return ""
