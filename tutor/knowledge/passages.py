"""Blocks to a document: its plain text, and passages that keep their place (heading path, character span).

The plain text is laid out by this module, one heading or passage per line with a blank line between, so every
passage is an exact slice of it (``text[start:end] == passage``) and a caller can show a passage in context.
Passages are packed from whole paragraphs of one section (never across a heading): short paragraphs are joined,
a paragraph longer than :data:`MAX_CHARS` is cut between sentences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from tutor.knowledge.parse import Block

MIN_CHARS = 400  # a passage shorter than this takes the next paragraph of its section if it fits under MAX_CHARS
SOFT_CHARS = 800  # above MIN_CHARS, paragraphs are joined only while the passage stays under this
MAX_CHARS = 1200  # no passage is longer, unless one sentence is

_TERMINAL = re.compile(r"[.?!][\"'”’)\]]*$")
_SENTENCE_END = re.compile(r"[.?!][\"'”’)\]]*\s+")
_ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "al.", "fig.", "eq.", "approx.", "mr.", "dr.", "no.", "resp."}


def split_sentences(text: str) -> list[str]:
    """Sentences of one passage: a break follows ``.``, ``?`` or ``!`` (not in "e.g." or "etc.") before a capital."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        after = text[match.end() : match.end() + 2]
        word = text[: match.start() + 1].rsplit(None, 1)[-1].lower()
        if not re.match(r"[\"'“‘(\[]?[A-Z0-9]", after) or word in _ABBREVIATIONS or re.fullmatch(r"\w\.", word):
            continue
        out.append(text[start : match.end()].strip())
        start = match.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def finish(text: str) -> str:
    """A paragraph as sentences: a trailing colon becomes a full stop, a missing full stop is added."""
    text = text.rstrip(" ,;")
    if _TERMINAL.search(text):
        return text
    return text[:-1] + "." if text.endswith(":") else text + "."


def _is_fragment(text: str) -> bool:
    return not _TERMINAL.search(text) and not text.endswith(":") and len(text.split()) <= 12


def _join_run(texts: list[str]) -> str:
    """Sibling list items as prose: short fragments become one "a; b; c." sentence, sentences stay sentences."""
    if all(_is_fragment(t) for t in texts):
        return finish("; ".join(t.rstrip(",;.") for t in texts))
    return " ".join(finish(t) for t in texts)


def _render_items(items: list[Block]) -> list[str]:
    """One string per top-level item, each with its nested items folded in after it."""
    out: list[str] = []
    i = 0
    while i < len(items):
        head, j = items[i], i + 1
        while j < len(items) and items[j].level > head.level:
            j += 1
        text = head.text
        if j > i + 1:
            text = _join_under(text, _render_items(items[i + 1 : j]))
        out.append(text)
        i = j
    return out


def _join_under(head: str, texts: list[str]) -> str:
    """A lead-in and the list it introduces, as one paragraph ("There are three types: a; b; c.")."""
    lead = head if head.endswith(":") else finish(head)
    return f"{lead} {_join_run(texts)}"


def _pieces(text: str) -> list[str]:
    """A paragraph cut between sentences into balanced pieces of at most MAX_CHARS (unless a sentence is longer)."""
    if len(text) <= MAX_CHARS:
        return [text]
    target = len(text) / math.ceil(len(text) / SOFT_CHARS)
    pieces, current = [], ""
    for sentence in split_sentences(text):
        if current and (len(current) >= target or len(current) + 1 + len(sentence) > MAX_CHARS):
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}" if current else sentence
    return [*pieces, current] if current else pieces


def _pack(paragraphs: list[str]) -> list[str]:
    """Passages of one section: whole paragraphs joined while short, long ones cut between sentences."""
    passages: list[str] = []
    current = ""
    for paragraph in paragraphs:
        for piece in _pieces(paragraph):
            limit = MAX_CHARS if len(current) < MIN_CHARS else SOFT_CHARS
            if current and len(current) + 1 + len(piece) <= limit:
                current = f"{current} {piece}"
            else:
                if current:
                    passages.append(current)
                current = piece
    return [*passages, current] if current else passages


@dataclass(frozen=True)
class Chunk:
    """A passage before it is stored: its heading path, its span in the document text, and its text."""

    headings: tuple[str, ...]
    start: int
    end: int
    text: str


@dataclass
class Document:
    """One ingested file: its title, plain text, passages (in order) and where it came from."""

    name: str
    title: str
    text: str
    chunks: list[Chunk] = field(default_factory=list)
    source: str = ""
    sha256: str = ""


def _drop_lead_in(paragraphs: list[str]) -> None:
    """Drop the unfinished sentence ("we can calculate MSE as:") that introduced a formula or code block now gone."""
    if _TERMINAL.search(paragraphs[-1]):
        return
    kept = split_sentences(paragraphs[-1])[:-1]
    if kept:
        paragraphs[-1] = " ".join(kept)
    else:
        paragraphs.pop()


def _sections(blocks: list[Block]) -> list[tuple[tuple[str, ...], list[str]]]:
    """(heading path, prose paragraphs) per section, lists folded into prose, in document order."""
    sections: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    stack: list[tuple[int, str]] = []  # (level, title); rubrics sit below every real heading
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if block.kind in ("heading", "rubric"):
            level = block.level if block.kind == "heading" else 1000
            while stack and stack[-1][0] >= level:
                stack.pop()
            title = block.text.rstrip(":").strip()  # ".. rubric:: Excurse:" is the heading "Excurse"
            if title:
                stack.append((level, title))
            sections.append((tuple(t for _, t in stack), []))
            i += 1
            continue
        paragraphs = sections[-1][1]
        if block.kind == "item":
            j = i
            while j < len(blocks) and blocks[j].kind == "item":
                j += 1
            items = _render_items(blocks[i:j])
            joins_lead = i > 0 and blocks[i - 1].kind == "para" and paragraphs and paragraphs[-1].endswith(":")
            if joins_lead:
                paragraphs[-1] = _join_under(paragraphs[-1], items)
            elif all(_is_fragment(t) for t in items):
                paragraphs.append(_join_run(items))
            else:
                paragraphs.extend(items)
            i = j
            continue
        if block.kind == "para" and re.search(r"[^\W\d_]", block.text):
            paragraphs.append(block.text)
        elif block.kind == "break" and i and blocks[i - 1].kind == "para" and paragraphs:
            _drop_lead_in(paragraphs)
        i += 1
    return [(path, [finish(p) for p in paragraphs]) for path, paragraphs in sections]


def layout(blocks: list[Block], name: str, fallback_title: str, title: str | None = None) -> Document:
    """The document's plain text and its passages, each an exact slice of that text.

    The title is ``title`` if given, else the first heading, else ``fallback_title`` (the file's stem).
    """
    title = title or next((b.text for b in blocks if b.kind == "heading" and b.text), fallback_title)
    parts: list[str] = []
    chunks: list[Chunk] = []
    at = 0
    shown: tuple[str, ...] = ()

    def emit(line: str) -> int:
        nonlocal at
        start = at
        parts.append(line + "\n\n")
        at += len(line) + 2
        return start

    for path, paragraphs in _sections(blocks):
        passages = _pack(paragraphs)
        if not passages:
            continue
        common = next(
            (k for k, (a, b) in enumerate(zip(path, shown, strict=False)) if a != b), min(len(path), len(shown))
        )
        for depth in range(common, len(path)):  # each heading line is written once, where its section starts
            emit("#" * (depth + 1) + " " + path[depth])
        shown = path
        for text in passages:
            start = emit(text)
            chunks.append(Chunk(path, start, start + len(text), text))
    return Document(name=name, title=title, text="".join(parts).rstrip("\n") + "\n", chunks=chunks)
