"""The terms a course defines, read off its sentences by rule: the vocabulary grounded questions are made of.

A small model cannot be trusted to know what "dropout" means, but a course says it in a sentence such as
"Dropout is a regularization technique that randomly sets a fraction of a layer's activations to zero."
:func:`definitions` finds such sentences with a handful of patterns that cover how course text defines
things ("X is a K that ...", "X refers to ...", "X, also called Y, is ...", "... is called X"), and
:class:`Glossary` holds every definition of a knowledge base with embeddings of the terms and of their
definitions, so that the nearest terms of the same kind can serve as distractors.

The rules live in four modules, re-exported here: :mod:`quizgen.glossary_text` (sentences, :class:`Definition`),
:mod:`quizgen.glossary_words` (what reads as a name, a kind, a verb), :mod:`quizgen.glossary_forms` (the forms of a
defining sentence) and :mod:`quizgen.glossary_structure` (terms the notes name by their headings and lists).
Everything here is a pure function of the text, so it is tested without a model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from quizgen.glossary_forms import (
    called_after,
    continued,
    leans_elsewhere,
    named_in_passing,
    parse_definition,
    parse_other_forms,
    spells,
    without_aside,
)
from quizgen.glossary_structure import heading_anchor, heading_terms, subject_facts, which_fact
from quizgen.glossary_text import (
    Definition,
    Sentence,
    fold,
    is_prose,
    mentions,
    quiz_prose,
    quiz_sentences,
    sentences,
    split_sentences,
)

__all__ = [
    "Definition",
    "Glossary",
    "Sentence",
    "definitions",
    "fold",
    "heading_anchor",
    "heading_terms",
    "is_prose",
    "mentions",
    "named_in_passing",
    "parse_definition",
    "parse_other_forms",
    "quiz_prose",
    "quiz_sentences",
    "sentences",
    "split_sentences",
    "subject_facts",
    "which_fact",
    "without_aside",
]

SAME_KIND_BONUS = 0.15  # a distractor of the key's kind ("technique" for a technique) reads as a real alternative
SAME_DOCUMENT_BONUS = 0.1  # ... and one from the key's own lesson belongs to the same topic


def definitions(passages: Iterable[Any]) -> list[Definition]:
    """Every term the passages define or name, first one per term.

    Real definitions come first, then sentences whose subject is a term the notes' structure names (see
    :func:`subject_facts`), then terms named in passing, then section headings that name a term the section's prose
    uses (see :func:`heading_terms`).
    """
    read = [(passage, quiz_sentences(passage)) for passage in passages]
    defined: list[Definition] = []
    passing: list[Definition] = []
    for _, found in read:
        for sentence in found:
            d = parse_definition(sentence) or parse_other_forms(sentence)
            if d and d.passing:  # "Sparse autoencoder: a penalty keeps ...": a labelled name, no definition
                passing.append(d)
            elif d and leans_elsewhere(d):  # "X, also called Y, prevents this by ...": keep the name, ask nothing
                passing.append(replace(d, predicate="", kind="", head="", relative="", passing=True))
            elif d:
                defined.append(d)
            passing.extend(named_in_passing(sentence))
    defined += called_after(read)
    corpus = " ".join(p.text.lower() for p, _ in read)
    by_doc: dict[str, list[Any]] = {}
    for p, _ in read:
        by_doc.setdefault(p.doc, []).append(p)

    def earlier(s: Sentence) -> str:  # the document's text before a sentence (its passages in order)
        before = [q.text for q in by_doc.get(s.passage.doc, ()) if q.start < s.passage.start]
        return " ".join([*before, s.passage.text[: s.start - s.passage.start]])

    taken = {d.sentence.start for d in defined}
    facts = [f for p, found in read for f in subject_facts(p, found, corpus, earlier) if f.sentence.start not in taken]
    taken.update(f.sentence.start for f in facts)
    facts += [f for _, found in read for s in found if s.start not in taken and (f := which_fact(s))]
    items: list[Definition] = []
    seen: set[str] = set()
    for d in (
        defined
        + continued(read, defined + facts)
        + facts
        + passing
        + [h for p, found in read for h in heading_terms(p, found)]
    ):
        names = {" ".join(fold(w) for w in name.split()) for name in d.names}  # "layer" and "layers" are one name
        if not seen.intersection(names):
            seen.update(names)
            items.append(d)
            continue
        # A later sentence that gives a known term another name ("Variational autoencoder (VAE): ..." after "A VAE
        # adds ..."): the kept item takes the new name as an alias, so no option is the same thing twice.
        for i, kept in enumerate(items):
            if {" ".join(fold(w) for w in n.split()) for n in kept.names} & names:
                extra = tuple(n for n in (d.term, *d.aliases) if n.lower() not in kept.names)
                if extra:
                    items[i] = replace(kept, aliases=kept.aliases + extra)
                    seen.update(names)
                break
    return items


@dataclass
class Glossary:
    """Every definition of a knowledge base, with embeddings for "terms of the same kind"."""

    items: list[Definition]
    term_vectors: Any = None  # unit vectors of the terms (numpy), one row per item
    definition_vectors: Any = None  # unit vectors of the defining sentences
    _index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, passages: Iterable[Any]) -> Glossary:
        """Read the definitions of ``passages`` and embed them (wordllama, offline, milliseconds)."""
        from quizgen.embed import embed

        items = definitions(passages)
        glossary = cls(items)
        if items:
            glossary.term_vectors = embed([d.term for d in items])
            glossary.definition_vectors = embed([d.sentence.text for d in items])
        glossary._index = {name: i for i, d in enumerate(items) for name in d.names}
        return glossary

    def __len__(self) -> int:
        return len(self.items)

    def find(self, name: str) -> Definition | None:
        """The definition of a term (or alias), case-insensitive."""
        i = self._index.get(name.lower())
        return None if i is None else self.items[i]

    def defined_by(self, sentence: Sentence) -> Definition | None:
        """The definition ``sentence`` states (a term it only names in passing defines nothing), if any.

        A definition quoting two sentences ("... . It is a K ...") is stated at its second.
        """
        for d in self.items:
            if not d.passing and d.sentence.start == sentence.start and d.sentence.text == sentence.text:
                return d
        for d in self.items:
            s = d.sentence
            if not d.passing and s.end == sentence.end and s.start < sentence.start and s.text.endswith(sentence.text):
                return d
        return None

    def neighbours(self, key: Definition, exclude_text: str = "") -> list[tuple[Definition, float]]:
        """Other terms ranked by how alike they are to ``key``: name, definition and kind together.

        A term is left out when it is the key under another name, contains the key's name or is contained
        in it (a cue, or the same thing), is named in ``exclude_text`` (the source sentence: the passage
        makes it true there), when its definition says nearly the same thing as the key's, or when it is a better
        ranked term under another name (its acronym, say).
        """
        i = self.items.index(key)
        term_sim = self.term_vectors @ self.term_vectors[i]
        def_sim = self.definition_vectors @ self.definition_vectors[i]
        ranked = []
        for j, other in enumerate(self.items):
            if j == i or self._same_thing(key, other) or mentions(exclude_text, other.names):
                continue
            if def_sim[j] > 0.92:  # two sentences saying the same: a synonym, not a wrong answer
                continue
            same_kind = SAME_KIND_BONUS if key.head and other.head == key.head else 0.0
            same_doc = SAME_DOCUMENT_BONUS if other.sentence.passage.doc == key.sentence.passage.doc else 0.0
            ranked.append((other, float(0.5 * term_sim[j] + 0.5 * def_sim[j] + same_kind + same_doc)))
        ranked.sort(key=lambda pair: -pair[1])
        # Two names of one thing ("BN" and "Batch normalization") as two wrong options tell a student both are wrong.
        kept: list[tuple[Definition, float]] = []
        for other, score in ranked:
            if not any(self._one_name(other, better) for better, _ in kept):
                kept.append((other, score))
        return kept

    @staticmethod
    def _one_name(a: Definition, b: Definition) -> bool:
        return any(x == y or spells(x, y) or spells(y, x) for x in a.names for y in b.names)

    @staticmethod
    def _same_thing(a: Definition, b: Definition) -> bool:
        for x in a.names:
            for y in b.names:
                if x == y or mentions(x, [y]) or mentions(y, [x]) or spells(x, y) or spells(y, x):
                    return True
        return False
