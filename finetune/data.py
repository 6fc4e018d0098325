"""Instruction data -> chat messages -> token ids with response-only labels.

Three row formats are read, from the hub or a local file, and normalised to ``[{"role", "content"}]``:

=============  ==========================================================================================
ShareGPT       ``conversations: [{from: system|human|gpt, value}]`` (FineTome-100k's own schema, with
               ``source`` and ``score``)
OpenAI         ``messages: [{role: system|user|assistant, content}]``
Alpaca         ``instruction``, optional ``input``, ``output``
=============  ==========================================================================================

Labels are ``-100`` everywhere except on the assistant turns, whose end-of-turn token is kept so
the model learns to stop. We mask by rendering the chat template ourselves (trl 1.x's
``assistant_only_loss`` needs ``{% generation %}`` markers that stock templates such as Llama 3.2's
lack) and mapping the assistant character spans onto tokens with the tokenizer's offsets.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tutor.errors import TutorError

IGNORE = -100
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
FORMATS_HELP = (
    "each row needs 'conversations' (ShareGPT: from/value), 'messages' (role/content) "
    "or 'instruction' + 'output' (Alpaca)"
)


class DataFormatError(TutorError, ValueError):
    """Data the user can fix (rows in no known format, nothing usable left); the message says what to pass.

    A ``ValueError`` too, so that callers written against the plain ``ValueError`` still catch it.
    """


@dataclass
class Example:
    """One tokenized conversation ready for the trainer."""

    input_ids: list[int]
    labels: list[int]

    def as_dict(self) -> dict[str, list[int]]:
        """The row a ``datasets.Dataset`` holds."""
        return {"input_ids": self.input_ids, "labels": self.labels, "attention_mask": [1] * len(self.input_ids)}


# ---- reading ---------------------------------------------------------------------------------------


def read_rows(source: str, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a local ``.jsonl``/``.json``/``.parquet`` file, else of the hub dataset ``source``."""
    path = Path(source).expanduser()
    if path.suffix.lower() in (".jsonl", ".json", ".parquet") or path.exists() or "/" not in source:
        if not path.is_file():
            raise FileNotFoundError(f"no data file at {path}: pass --data PATH (a .jsonl, .json or .parquet file)")
        return _read_file(path)
    return _read_hub(source, split)


def _read_file(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".parquet":
        import datasets

        return list(datasets.load_dataset("parquet", data_files=str(path), split="train"))
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):  # one JSON object: a single row, or {"data": [...]}-style wrappers
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    if isinstance(data, list):
        return data
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{path}:{number} is not JSON ({exc.msg}): {FORMATS_HELP}") from exc
    return rows


def _read_hub(name: str, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        return list(datasets.load_dataset(name, split=split))
    except Exception as exc:  # offline, unknown id, gated: all end the same way for the user
        raise FileNotFoundError(f"could not load the hub dataset {name!r} ({exc}): pass --data PATH") from exc


# ---- normalising -----------------------------------------------------------------------------------


def detect_format(row: Any) -> str:
    """``"sharegpt"``, ``"messages"`` or ``"alpaca"``; raises :class:`DataFormatError` otherwise."""
    if isinstance(row, dict):
        if isinstance(row.get("conversations"), list):
            return "sharegpt"
        if isinstance(row.get("messages"), list):
            return "messages"
        if "instruction" in row and "output" in row:
            return "alpaca"
        keys = ", ".join(sorted(map(str, row))) or "none"
        raise DataFormatError(f"a row with keys ({keys}) is in no known format: {FORMATS_HELP}")
    raise DataFormatError(f"a row is a {type(row).__name__}, not an object: {FORMATS_HELP}")


def to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """Normalise one row of any known format to chat messages."""
    kind = detect_format(row)
    if kind == "sharegpt":
        return [_sharegpt_turn(t) for t in row["conversations"]]
    if kind == "messages":
        return [{"role": str(t["role"]), "content": str(t.get("content") or "")} for t in row["messages"]]
    prompt = str(row["instruction"]).strip()
    if str(row.get("input") or "").strip():
        prompt = f"{prompt}\n\n{str(row['input']).strip()}"
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": str(row["output"] or "")}]


def _sharegpt_turn(turn: dict[str, Any]) -> dict[str, str]:
    role = SHAREGPT_ROLES.get(str(turn.get("from", "")).lower())
    if role is None:
        raise DataFormatError(f"ShareGPT turn from {turn.get('from')!r}: expected one of {sorted(SHAREGPT_ROLES)}")
    return {"role": role, "content": str(turn.get("value") or "")}


def is_usable(messages: list[dict[str, str]]) -> bool:
    """A conversation with an assistant turn and no empty turn."""
    return any(m["role"] == "assistant" for m in messages) and all(m["content"].strip() for m in messages)


def conversations(rows: Iterable[dict[str, Any]], min_score: float | None = None) -> list[list[dict[str, str]]]:
    """Rows -> distinct usable conversations, keeping those scored at least ``min_score`` when scored."""
    seen: set[str] = set()
    out = []
    for row in rows:
        messages = to_messages(row)
        score = row.get("score")
        if min_score is not None and score is not None and float(score) < min_score:
            continue
        key = hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        if is_usable(messages) and key not in seen:
            seen.add(key)
            out.append(messages)
    return out


# ---- tokenizing ------------------------------------------------------------------------------------


def end_of_turn(tokenizer: Any) -> str:
    """The text that closes an assistant turn in this tokenizer's chat template."""
    probe = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "XYZ"}]
    text = tokenizer.apply_chat_template(probe, tokenize=False)
    tail = text[text.rindex("XYZ") + 3 :]
    for token in ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", tokenizer.eos_token or ""):
        if token and token in tail:
            return token
    return tail.strip() or (tokenizer.eos_token or "")


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns (end-of-turn included).

    A span runs from where the template's generation prompt ends to the end of the turn's
    end-of-turn marker, so the whitespace the template puts after the marker stays unlabelled.
    """
    eot = end_of_turn(tokenizer)
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True))
        upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not text.startswith(upto) or not upto.startswith(text[:start]):
            raise DataFormatError(
                "the chat template renders a prefix of the chat differently, so the assistant turns cannot be "
                "masked: train from a model whose chat template renders each turn the same way whatever follows"
            )
        end = upto.find(eot, start + len(message["content"]) - 1)
        spans.append((start, end + len(eot) if end >= 0 else len(upto)))
    return text, spans


def tokenize(tokenizer: Any, messages: list[dict[str, str]]) -> Example:
    """Token ids of the rendered chat and labels that keep only assistant tokens."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for token, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        inside = any(start <= a and b <= end for start, end in spans) and b > a
        labels.append(token if inside else IGNORE)
    return Example(list(enc["input_ids"]), labels)


def kept_text(tokenizer: Any, example: Example) -> str:
    """The text of the labelled tokens (what the loss trains on), for checking a mask by eye or in a test."""
    return tokenizer.decode([t for t in example.labels if t != IGNORE])


def build(
    rows: list[dict[str, Any]],
    tokenizer: Any,
    *,
    max_seq_len: int,
    eval_size: float,
    seed: int,
    min_score: float | None = None,
    max_examples: int | None = None,
) -> tuple[list[Example], list[Example], dict[str, int]]:
    """Rows -> (train, eval, counts): normalised, filtered, de-duplicated, tokenized, split.

    Raises:
        DataFormatError: when no row is in a known format or nothing usable is left.
    """
    if not rows:
        raise DataFormatError(f"the data holds no rows: {FORMATS_HELP}")
    chats = conversations(rows, min_score)
    random.Random(seed).shuffle(chats)
    examples, too_long = [], 0
    for chat in chats:
        example = tokenize(tokenizer, chat)
        if len(example.input_ids) > max_seq_len:
            too_long += 1
            continue
        examples.append(example)
        if max_examples and len(examples) >= max_examples:
            break
    n_eval = int(eval_size) if eval_size >= 1 else round(len(examples) * eval_size)
    if len(examples) - n_eval < 1:
        raise DataFormatError(
            f"{len(examples)} usable conversations of {len(rows)} rows ({too_long} over {max_seq_len} tokens): "
            "need at least one training example; raise max_seq_len or pass more data"
        )
    counts = {"rows": len(rows), "conversations": len(chats), "too_long": too_long, "eval": n_eval}
    counts["train"] = len(examples) - n_eval
    return examples[n_eval:], examples[:n_eval], counts
