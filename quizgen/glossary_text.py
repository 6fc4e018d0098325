"""Sentences and definitions: the text a glossary is read from and what it holds.

A :class:`Sentence` is one sentence of a knowledge-base passage with its span in the document's text (so a
question's quote can be checked against the document); a :class:`Definition` is a term with the sentence that
defines it or names it. Pure functions of the text, tested without a model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Abbreviations after which a period does not end a sentence.
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "fig.", "eq.", "approx.", "resp.", "no.", "al.")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s+(?=[A-Z0-9\"'(\[])")
# What else ends a sentence when a quiz reads notes: a full stop before a name written in lower case ("... counts.
# fastText extends ..."), and a colon after a lead-in clause that a list item ran into ("... depends on the type of
# feature: Gaussian naive Bayes assumes ...").
_QUIZ_SENTENCE_END = re.compile(
    r"[.!?][\"')\]]?\s+(?=[A-Z0-9\"'(\[]|[a-z]+[A-Z0-9]\w*\b)|(?<=\w): (?=[A-Z][a-z]*\b(?! ?:))"
)
MIN_LEAD_IN_WORDS = 5  # "Stride: The number ..." is a labelled entry, not a lead-in: a label has at most four words
MIN_SENTENCE_WORDS = 6
MAX_SENTENCE_CHARS = 280  # a stem quotes the sentence's predicate: it must fit schema.STEM_MAX with room


@dataclass(frozen=True)
class Sentence:
    """One sentence of a passage, with its span in the document's text."""

    text: str
    start: int  # offset in the document's extracted text
    end: int
    passage: Any  # the knowledge base's Passage it comes from


@dataclass(frozen=True)
class Definition:
    """A term and the course sentence that defines it.

    For "Dropout is a regularization technique that randomly sets ... ." the term is "Dropout", the
    predicate "a regularization technique that randomly sets ...", the kind "regularization technique",
    the head "technique" and the relative clause "randomly sets ...".
    """

    term: str  # as the sentence spells it, without a leading article
    predicate: str  # what the sentence says the term is, without the final period
    kind: str  # the noun phrase naming what sort of thing the term is ("" when the sentence has none)
    head: str  # the last word of ``kind`` ("" when none)
    relative: str  # the clause after "that/which/who" ("" when none)
    sentence: Sentence
    aliases: tuple[str, ...] = ()
    naming: bool = False  # "... is called X": the predicate is the sentence's subject
    article: str = ""  # the article the sentence puts before the term ("A", "The"), "" when none
    passing: bool = False  # named in passing ("a trick known as X", "expansion (ACRONYM)"): no predicate to quote
    plural: bool = False  # "X are ...": the term names a plural ("Random forests are ...")
    verb: str = ""  # what links the term to its predicate when no copula in the sentence does ("is" for "X: a K")
    described: bool = False  # "X: the input is corrupted ...": a labelled entry whose text (the predicate) is a clause

    @property
    def names(self) -> tuple[str, ...]:
        """The term and its aliases, lower case: every way the course names it."""
        return tuple(n.lower() for n in (self.term, *self.aliases))


def split_sentences(text: str, *, quiz: bool = False) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (a period after e.g./i.e./etc. does not end one).

    With ``quiz`` a sentence also ends before a name written in lower case and after a lead-in clause's colon (see
    :data:`_QUIZ_SENTENCE_END`); the grounded tutor reads the plain split, the quiz the finer one.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in (_QUIZ_SENTENCE_END if quiz else _SENTENCE_END).finditer(text):
        end = match.start() + len(match.group(0).rstrip())  # the closing quote or bracket stays with it
        piece = text[start:end]
        if piece.endswith(":") and len(piece.split()) < MIN_LEAD_IN_WORDS:
            continue
        last = piece.rsplit(" ", 1)[-1].lower().strip("\"')]")
        # A quiz reads "... a reconstruction of x. Because ..." as two sentences: a lower-case letter is a variable.
        initial = re.fullmatch(r"[A-Z]\.", piece.rsplit(" ", 1)[-1]) if quiz else re.fullmatch(r"[a-z]\.", last)
        # ... but "on p. 12 of the book": before a number a lower-case initial is an abbreviation.
        initial = initial or (re.fullmatch(r"[a-z]\.", last) and re.match(r"\s*\d", text[end:]))
        if last in ABBREVIATIONS or initial or re.fullmatch(r"\d+\.", piece.strip()):
            continue  # "e.g.", an initial, or a list number ("1."); "between 0 and 1. If" does end a sentence
        spans.append((start, end))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def sentences(passage: Any, *, quiz: bool = False) -> list[Sentence]:
    """The sentences of a knowledge-base passage, each with its span in the document's text (``quiz``: see above)."""
    return [
        Sentence(passage.text[a:b], passage.start + a, passage.start + b, passage)
        for a, b in split_sentences(passage.text, quiz=quiz)
    ]


def quiz_sentences(passage: Any) -> list[Sentence]:
    """The sentences a quiz reads: :func:`sentences` split finer, where notes run a list or a lower-case name in."""
    return sentences(passage, quiz=True)


def is_prose(text: str, *, hyphens: bool = False) -> bool:
    """A sentence a question can quote: words, not code, a formula or a table row.

    With ``hyphens`` a hyphenated word counts as a word ("trade-off", "epsilon-greedy"): the quiz reads it so (see
    :func:`quiz_prose`); the grounded tutor reads the plain test, unchanged.
    """
    words = text.split()
    if len(words) < MIN_SENTENCE_WORDS or len(text) > MAX_SENTENCE_CHARS or not text.endswith((".", "!")):
        return False
    if re.search(r"[{}<>=_\\|^$#@`~\[\]]", text) or "..." in text:
        return False
    bare = [w.strip(".,;:()'\"") for w in words]
    alpha = sum((re.sub(r"(?<=[A-Za-z])[-'’](?=[A-Za-z])", "", w) if hyphens else w).isalpha() for w in bare)
    return alpha >= 0.75 * len(words)


def quiz_prose(text: str) -> bool:
    """:func:`is_prose` as a quiz reads it: a hyphenated word ("exploration-exploitation trade-off") is a word."""
    return is_prose(text, hyphens=True)


def mentions(text: str, names: Sequence[str]) -> bool:
    """Whether ``text`` names any of ``names`` as whole words (case-insensitive)."""
    low = text.lower()
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", low) for n in names if n)


def fold(word: str) -> str:
    """A word as names are compared: lower case, no hyphen or apostrophe, a crude plural fold ("trees" -> "tree")."""
    word = re.sub(r"[\-'’]", "", word.lower())
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
