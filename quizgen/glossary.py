"""The terms a course defines, read off its sentences by rule: the vocabulary grounded questions are made of.

A small model cannot be trusted to know what "dropout" means, but a course says it in a sentence such as
"Dropout is a regularization technique that randomly sets a fraction of a layer's activations to zero."
:func:`definitions` finds such sentences with a handful of patterns that cover how course text defines
things ("X is a K that ...", "X refers to ...", "X, also called Y, is ...", "... is called X"), and
:class:`Glossary` holds every definition of a knowledge base with embeddings of the terms and of their
definitions, so that the nearest terms of the same kind can serve as distractors.

Everything here is a pure function of the text, so it is tested without a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Abbreviations after which a period does not end a sentence.
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "fig.", "eq.", "approx.", "resp.", "no.", "al.")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s+(?=[A-Z0-9\"'(\[])")

# Words a term never starts with: pronouns, determiners and openers of a clause, not names of things.
NOT_A_TERM_START = frozenset(
    "it this that these those there here we you they one each every such its our your their in for when if "
    "because since while although however thus so but and or as at on by with from to of after before during "
    "then what which who how why where some many most all any both either neither no not another other only "
    "also first second third finally next example note suppose let given below above following".split()
)
# Words that name a role in a sentence, not a concept: "The output is a single number ...", "The key thing to note
# is ..." define nothing a question could ask for.
GENERIC_NOUNS = frozenset(
    "input inputs output outputs result results idea goal point thing things problem answer reason difference "
    "key main step steps value values number example case way part rest".split()
)
# Words that end the noun phrase naming a term's kind ("a classification algorithm used to ...").
KIND_STOP = frozenset(
    "that which who whose where when of for in on to with from by used designed applied based trained called "
    "known computed defined made given such as into over under between than like whose".split()
)
PREPOSITIONS = frozenset("from in of by with to on at for into through under over about".split())
FINITE_VERBS = frozenset("can may will must should could might".split())
NOT_VERBS = frozenset("its this his their as is has was".split()) - {"is", "has"}
COPULAS = ("is", "are", "refers to", "refer to", "means", "denotes")
NAMING = r"(?:is|are) (?:called|known as|termed|named|referred to as)"
STOP_TERMS = frozenset("it this that them these those one something anything the result the method".split())
MAX_TERM_WORDS = 5
SAME_KIND_BONUS = 0.15  # a distractor of the key's kind ("technique" for a technique) reads as a real alternative
SAME_DOCUMENT_BONUS = 0.1  # ... and one from the key's own lesson belongs to the same topic
MAX_KIND_WORDS = 8
MIN_SENTENCE_WORDS = 6
MAX_SENTENCE_CHARS = 280  # a stem quotes the sentence's predicate: it must fit schema.STEM_MAX with room

_TERM = r"(?P<term>[A-Za-z][\w\-/'’]*(?: [\w\-/'’]+){0,4}?)"
_ABBR = r"(?: \((?:(?P<abbr>[A-Za-z][\w\-]{0,15})|[^()]{1,60})\))?"
_ALIAS = r", (?:also |often |sometimes )?(?:called|known as) (?P<alias>[^,]{2,40}),"
COPULA_DEF = re.compile(
    rf"^(?P<article>The |A |An )?{_TERM}{_ABBR}(?:{_ALIAS})?" rf" (?P<verb>{'|'.join(COPULAS)}) (?P<pred>.+)$"
)
ALIAS_FACT = re.compile(rf"^(?P<article>The |A |An )?{_TERM}{_ABBR}{_ALIAS} (?P<pred>(?:\w+ly )?[a-z]+s .+)$")
ACRONYM = re.compile(r"(?P<term>(?:[A-Za-z][\w\-]* ){1,4}[A-Za-z][\w\-]*) \((?P<abbr>[A-Z][A-Za-z0-9]{1,7})\)")
NAMED_IN_PASSING = re.compile(
    r"\b(?:(?:known as|called|termed|named) (?:this |these |it )?(?:the |a |an )?|we call (?:this|these|it|them) the )"
    r"\*?(?P<term>[A-Za-z][\w\-]*(?: [A-Za-z][\w\-]*){0,3}?)\*?"
    r"(?=[,.;:]| or | and | \()"
)
NAMING_DEF = re.compile(rf"^(?P<pred>.{{15,}}?) {NAMING} (?:the |a |an )?(?P<term>[A-Za-z][\w\-/' ]{{1,50}}?)$")


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

    @property
    def names(self) -> tuple[str, ...]:
        """The term and its aliases, lower case: every way the course names it."""
        return tuple(n.lower() for n in (self.term, *self.aliases))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (a period after e.g./i.e./etc. does not end one)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group(0).rstrip())  # the closing quote or bracket stays with it
        piece = text[start:end]
        last = piece.rsplit(" ", 1)[-1].lower().strip("\"')]")
        if last in ABBREVIATIONS or re.fullmatch(r"[a-z]\.", last) or re.fullmatch(r"\d+\.", piece.strip()):
            continue  # "e.g.", an initial, or a list number ("1."); "between 0 and 1. If" does end a sentence
        spans.append((start, end))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def sentences(passage: Any) -> list[Sentence]:
    """The sentences of a knowledge-base passage, each with its span in the document's text."""
    return [
        Sentence(passage.text[a:b], passage.start + a, passage.start + b, passage)
        for a, b in split_sentences(passage.text)
    ]


def is_prose(text: str) -> bool:
    """A sentence a question can quote: words, not code, a formula or a table row."""
    words = text.split()
    if len(words) < MIN_SENTENCE_WORDS or len(text) > MAX_SENTENCE_CHARS or not text.endswith((".", "!")):
        return False
    if re.search(r"[{}<>=_\\|^$#@`~\[\]]", text) or "..." in text:
        return False
    alpha = sum(w.strip(".,;:()'\"").isalpha() for w in words)
    return alpha >= 0.75 * len(words)


def _term_ok(term: str) -> bool:
    words = term.split()
    if not 1 <= len(words) <= MAX_TERM_WORDS or words[0].lower() in NOT_A_TERM_START:
        return False
    if any(w.lower() in ("is", "are", "was", "were", "can", "may", "will", "has", "have", "not") for w in words):
        return False
    if any(w.isdigit() for w in words):  # "A value near 1 means ...": a number is not part of a name
        return False
    if (len(words) == 1 and term.lower() in GENERIC_NOUNS) or any(w.lower() in ("thing", "things") for w in words):
        return False
    if sum(ch.isalpha() for ch in term) < 2:  # "C' is the derivative ...": a symbol, not a name
        return False
    if len(words) >= 2 and words[1].lower() in ("a", "an", "the", "our", "your", "its"):
        return False  # "Training a model is ...": a verb phrase, not the name of a concept
    return len(term) >= 2 and not term.isdigit()


def _kind(predicate: str) -> tuple[str, str, str]:
    """(kind, head, relative clause) of a predicate that starts with an article, else empty strings."""
    words = predicate.split()
    if not words or words[0].lower() not in ("a", "an", "the"):
        return "", "", ""
    kind: list[str] = []
    for word in words[1:]:
        bare = word.strip(",;:").lower()
        if bare in KIND_STOP or not re.fullmatch(r"[a-z][a-z\-]*", bare) or len(kind) >= MAX_KIND_WORDS:
            break
        kind.append(word.strip(",;:"))
        if word.endswith((",", ";", ":")):
            break
    head = kind[-1].lower() if kind else ""
    return " ".join(kind), head, _subject_relative(predicate)


def _subject_relative(predicate: str) -> str:
    """The clause after "that/which/who" when the noun before it is its subject ("a method that adds ..."), else "".

    "the set from which a model learns" (a preposition before "which") and "the reduction that a split
    achieves" (the clause has its own subject) cannot become "Which K V?", so they give "".
    """
    for match in re.finditer(
        r"(?P<before>\S+) (?:that|which|who) (?P<adv>\w+ly )?(?P<verb>\S+) (?P<rest>.+)$", predicate
    ):
        if match.group("before").lower() in PREPOSITIONS:
            continue
        verb = match.group("verb").lower()
        if verb in FINITE_VERBS or (verb.endswith("s") and not verb.endswith("ss") and verb not in NOT_VERBS):
            return f"{match.group('adv') or ''}{match.group('verb')} {match.group('rest')}"
        return ""
    return ""


def parse_definition(sentence: Sentence) -> Definition | None:
    """The definition a sentence states, or None when it states none of the patterns above."""
    text = sentence.text.strip()
    if not is_prose(text):
        return None
    body = text.rstrip(".!").strip()
    match = COPULA_DEF.match(body)
    if match and _term_ok(match.group("term")):
        term = match.group("term")
        if match.group("verb") in ("refers to", "means", "denotes") and re.match(r"(?:term|word|phrase) \S", term):
            term = term.split(" ", 1)[1]  # "The term layer error refers to ...": the term is "layer error"
        pred = match.group("pred").strip()
        if match.group("verb") in ("is", "are") and not re.match(r"(?:a|an|the|one) ", pred, re.IGNORECASE):
            return None  # "X is used to ...", "X is that ...": a fact about X, not a definition
        if pred.lower().startswith(("the same", "the one", "the first", "the last", "the case")):
            return None
        kind, head, relative = _kind(pred)
        aliases = tuple(a for a in (match.group("abbr"), match.group("alias")) if a)
        article = (match.group("article") or "").strip()
        plural = match.group("verb") in ("are", "refer to")
        return Definition(term, pred, kind, head, relative, sentence, aliases, article=article, plural=plural)
    match = ALIAS_FACT.match(body)
    if match and _term_ok(match.group("term")):
        aliases = tuple(a for a in (match.group("abbr"), match.group("alias")) if a)
        article = (match.group("article") or "").strip()
        pred = match.group("pred")
        return Definition(match.group("term"), pred, "", "", pred, sentence, aliases, article=article)
    match = NAMING_DEF.match(body)
    if match and _term_ok(match.group("term").strip()):
        pred = match.group("pred").strip()
        if pred.split()[0].lower() in NOT_A_TERM_START - {"a", "an", "the"} or pred.endswith((" and", " or", ",")):
            return None
        pred = pred[0].lower() + pred[1:]
        kind, head, relative = _kind(pred)
        return Definition(match.group("term").strip(), pred, kind, head, relative, sentence, naming=True)
    return None


def named_in_passing(sentence: Sentence) -> list[Definition]:
    """Terms a sentence names without defining them: "a trick known as X", "maximum a posteriori (MAP)"."""
    text = sentence.text
    if not is_prose(text):
        return []
    found = []
    for match in NAMED_IN_PASSING.finditer(text):
        term = match.group("term").strip()
        if _term_ok(term) and term.lower() not in STOP_TERMS and _names_a_concept(term):
            found.append(Definition(term, "", "", "", "", sentence, passing=True))
    for match in ACRONYM.finditer(text):
        words, abbr = match.group("term").split(), match.group("abbr")
        for k in range(len(words), 0, -1):  # the shortest tail of words whose initials spell the acronym
            tail = words[-k:]
            if "".join(w[0] for w in tail).lower() == abbr.lower().rstrip("s") and _term_ok(" ".join(tail)):
                found.append(Definition(" ".join(tail), "", "", "", "", sentence, (abbr,), passing=True))
                break
    return found


def _names_a_concept(term: str) -> bool:
    """A term named in passing is kept when it reads as a name: several words, an acronym, or a long word.

    "called output", "as below", "C'" are words a sentence happens to use, not concepts a question can ask for.
    """
    words = term.split()
    if any(w.lower() in ("a", "an", "the", "this", "that", "these", "our", "your", "its") for w in words):
        return False
    if not all(re.fullmatch(r"[A-Za-z][A-Za-z\-]*", w) for w in words):
        return False
    return len(words) >= 2 or (term.isupper() and len(term) >= 2) or len(term) >= 8


def definitions(passages: Iterable[Any]) -> list[Definition]:
    """Every term the passages define or name, first one per term; real definitions before terms named in passing."""
    defined: list[Definition] = []
    passing: list[Definition] = []
    for passage in passages:
        for sentence in sentences(passage):
            d = parse_definition(sentence)
            if d:
                defined.append(d)
            passing.extend(named_in_passing(sentence))
    found: list[Definition] = []
    seen: set[str] = set()
    for d in defined + passing:
        if not seen.intersection(d.names):
            seen.update(d.names)
            found.append(d)
    return found


def mentions(text: str, names: Sequence[str]) -> bool:
    """Whether ``text`` names any of ``names`` as whole words (case-insensitive)."""
    low = text.lower()
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", low) for n in names if n)


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

    def neighbours(self, key: Definition, exclude_text: str = "") -> list[tuple[Definition, float]]:
        """Other terms ranked by how alike they are to ``key``: name, definition and kind together.

        A term is left out when it is the key under another name, contains the key's name or is contained
        in it (a cue, or the same thing), is named in ``exclude_text`` (the source sentence: the passage
        makes it true there), or when its definition says nearly the same thing as the key's.
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
        return ranked

    @staticmethod
    def _same_thing(a: Definition, b: Definition) -> bool:
        for x in a.names:
            for y in b.names:
                if x == y or mentions(x, [y]) or mentions(y, [x]):
                    return True
        return False
