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

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

# Abbreviations after which a period does not end a sentence.
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "fig.", "eq.", "approx.", "resp.", "no.", "al.")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s+(?=[A-Z0-9\"'(\[])")

# Words a term never starts with: pronouns, determiners and openers of a clause, not names of things.
NOT_A_TERM_START = frozenset(
    "it this that these those there here we you they one each every such its our your their in for when if "
    "because since while although however thus so but and or as at on by with from to of after before during "
    "then what which who how why where some many most all any both either neither no not another other only "
    "also first second third finally next example note suppose let given below above following once unless until "
    "whenever whereas though".split()
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
    "known computed defined made given such as into over under between than like whose both either".split()
)
VAGUE_KINDS = frozenset("type kind form sort class family variant version category".split())
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
_ALIAS = r", (?:(?:also |often |sometimes )?(?:called|known as)|short for) (?P<alias>[^,]{2,40}),"
COPULA_DEF = re.compile(
    rf"^(?P<article>The |A |An )?{_TERM}{_ABBR}(?:{_ALIAS})?" rf" (?P<verb>{'|'.join(COPULAS)}) (?P<pred>.+)$"
)
ALIAS_FACT = re.compile(rf"^(?P<article>The |A |An )?{_TERM}{_ABBR}{_ALIAS} (?P<pred>(?:\w+ly )?[a-z]+s .+)$")
ACRONYM = re.compile(r"(?P<term>(?:[A-Za-z][\w\-]* ){1,4}[A-Za-z][\w\-]*) \((?P<abbr>[A-Z][A-Za-z0-9]{1,7})\)")
NAMED_IN_PASSING = re.compile(
    r"\b(?:(?:known as|called|termed|named) (?:this |these |it )?(?:the |a |an )?"
    r"|[Ww]e call (?:this|these|it|them) the )"
    r"\*?(?P<term>[A-Za-z][\w\-]*(?: [A-Za-z][\w\-]*){0,3}?)\*?"
    r"(?=[,.;:]| or | and | \()"
)
NAMING_DEF = re.compile(
    rf"^(?P<pred>.{{15,}}?) {NAMING} (?:the |a |an )?[\"“‘']?(?P<term>[A-Za-z][\w\-/' ]{{1,50}}?)[\"”’']?$"
)
# A phrase that sets the scene before the subject ("In a CNN, a convolution is ...", "Formally, X is ..."): the
# definition after it is read as if the phrase were not there.
OPENER = re.compile(
    r"^(?:(?:In|For|Within|Under|With|At|On|By) [^,;:]{1,40}|In (?:short|practice|general|particular|other words)|"
    r"Here|Put simply|Simply put|Roughly speaking|[A-Z][a-z]+ly), (?=\S)"
)
# A glossary entry or a labelled list item: "Stride: the number of pixels a filter moves at each step."
LABEL_DEF = re.compile(rf"^(?P<term>[A-Z][\w\-/'’]*(?: [\w\-/'’]+){{0,3}}?){_ABBR}: (?P<pred>(?:[Aa]n?|[Tt]he) .+)$")
# An appositive names what the subject is before the sentence goes on: "Adam, an optimizer that ..., is ...".
APPOSITIVE_DEF = re.compile(
    rf"^(?P<article>The |A |An )?{_TERM}, (?P<pred>(?:a|an|the) [^,;:()]{{8,150}}), (?P<rest>[a-z]+) .+$"
)


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
    for i, word in enumerate(words[1:], 1):
        bare = word.strip(",;:").lower()
        if bare == "of" and kind and kind[-1].lower() in VAGUE_KINDS and i + 1 < len(words):
            kind.append(word)  # "a type of layer that ...": the kind is "type of layer", its head "layer"
            continue
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


# Words that describe or grade a thing in a sentence, not part of its name ("A typical dropout rate lies ...", "a large
# C", "Overfitting typically shows ..."), and heads that name a role ("X is the usual choice").
DESCRIBING = frozenset(
    "typical typically usual usually common commonly large small big good bad new old main different same high low "
    "whole entire little much many few real actual also often still even then again apart together away well too "
    "cannot does do did".split()
)
ROLE_HEADS = frozenset("choice option default goal way idea thing part reason problem point case".split())


def _reads_as_a_name(d: Definition | None) -> bool:
    """Whether a term found by the looser forms reads as a name: no describing word, no role for a head."""
    return d is not None and not set(d.term.lower().split()) & DESCRIBING and d.head not in ROLE_HEADS


def parse_other_forms(sentence: Sentence) -> Definition | None:
    """The definition a sentence states in a form less plain than :func:`parse_definition` reads (see below)."""
    d = _parse_other_forms(sentence)
    return d if _reads_as_a_name(d) else None


def _parse_other_forms(sentence: Sentence) -> Definition | None:
    """The definition a sentence states in a form less plain than :func:`parse_definition` reads.

    * after an opening phrase: "In a CNN, a convolution is a linear operation that ..." defines "convolution";
    * a labelled entry: "Stride: the number of pixels the filter moves at each step.";
    * an appositive: "Adam, an optimizer that adapts each step size, is the default in many libraries."

    Kept apart from :func:`parse_definition`, which the grounded tutor also ranks sentences with.
    """
    text = sentence.text.strip()
    if not is_prose(text):
        return None
    body = text.rstrip(".!").strip()
    opener = OPENER.match(body)
    if opener:
        rest = body[opener.end() :]
        rest = rest[:1].upper() + rest[1:]
        d = parse_definition(Sentence(rest + ".", sentence.start, sentence.end, sentence.passage))
        if d is not None and not d.naming:
            return replace(d, sentence=sentence, verb=d.verb or _copula_of(rest))
    match = APPOSITIVE_DEF.match(body)
    if match and _term_ok(match.group("term")) and (_finite_verb(match.group("rest")) or match.group("rest") == "is"):
        pred = match.group("pred")
        kind, head, relative = _kind(pred)
        article = (match.group("article") or "").strip()
        return Definition(match.group("term"), pred, kind, head, relative, sentence, article=article, verb="is")
    short = without_aside(body)
    if short:
        d = parse_definition(Sentence(short + ".", sentence.start, sentence.end, sentence.passage))
        if d is not None and not d.naming:
            return replace(d, sentence=sentence, verb=d.verb or _copula_of(short))
    match = COLON_DEF.search(body)
    if match and _term_ok(match.group("term")) and _names_a_concept(match.group("term")):
        pred = match.group("pred")
        kind, head, relative = _kind(pred)
        article = match.group("article").capitalize()
        return Definition(match.group("term"), pred, kind, head, relative, sentence, article=article, verb="is")
    match = LABEL_DEF.match(body)
    if match and _term_ok(match.group("term")) and not match.group("term").lower().startswith(("step", "note")):
        pred = match.group("pred")
        pred = pred[:1].lower() + pred[1:]
        kind, head, relative = _kind(pred)
        if set(kind.lower().split()) & (MODALS | {"is", "are", "was", "has", "have"}):
            return None  # "Kernel: A convolution layer can have ...": a clause about it, not what it is
        abbr = (match.group("abbr"),) if match.group("abbr") else ()
        return Definition(match.group("term"), pred, kind, head, relative, sentence, abbr, verb="is")
    return None


# An aside between a subject and its verb: "Gradient boosting, introduced by Friedman in 2001, extends ...".
ASIDE = re.compile(
    r"^(?P<subject>(?:The |A |An )?[A-Za-z][\w\-]*(?: [\w\-]+){0,4}), [^,;:]{3,80}, (?P<rest>[a-z]+ .+)$"
)
# A term named, then defined after a colon: "... represent it by a one-hot vector: a vector as long as ...".
COLON_DEF = re.compile(
    r"\b(?P<article>a|an|the) (?P<term>[A-Za-z][\w\-]*(?: [A-Za-z][\w\-]*){0,2}): (?P<pred>(?:a|an) [^:;]{10,})$"
)


def without_aside(body: str) -> str | None:
    """``body`` without an aside between its subject and its verb, or None when it has none."""
    match = ASIDE.match(body)
    if not match:
        return None
    verb = match.group("rest").split(" ", 1)[0]
    if not (_finite_verb(verb) or verb in ("is", "are", "refers", "means")):
        return None
    return f"{match.group('subject')} {match.group('rest')}"


def _copula_of(body: str) -> str:
    match = re.search(rf" ({'|'.join(COPULAS)}) ", body)
    return match.group(1) if match else ""


# Words that grade a thing rather than name it ("a smoother loss surface", "a larger batch").
COMPARATIVES = frozenset(
    "more less fewer larger smaller bigger better worse faster slower higher lower simpler smoother deeper wider "
    "greater stronger weaker longer shorter easier harder cheaper".split()
)
MODALS = frozenset("can will may must should could might".split())
# Words ending in "s" that are not the verb of a singular subject.
NOT_S_VERBS = frozenset(
    "is was as its this his thus yes less always perhaps sometimes towards whereas besides us does across "
    "various previous famous numerous".split()
)
# Words that, right after a candidate verb, show it was a plural noun ("Pooling layers often take ...").
NOT_AFTER_VERB = frozenset(
    "is are was were be been not often also usually typically generally always never sometimes only can will may "
    "might must should could would have has do does".split()
)


def _finite_verb(word: str) -> bool:
    """Whether ``word`` reads as the verb of a singular subject: "adds", "controls", "can" (not "is": a copula)."""
    if word in MODALS:
        return True
    if not re.fullmatch(r"[a-z]{3,}", word) or word in NOT_S_VERBS:
        return False
    return word.endswith("s") and not word.endswith(("ss", "us", "ous", "is"))


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
    """Every term the passages define or name, first one per term.

    Real definitions come first, then sentences whose subject is a term the notes' structure names (see
    :func:`subject_facts`), then terms named in passing, then section headings that name a term the section's prose
    uses (see :func:`heading_terms`).
    """
    read = [(passage, sentences(passage)) for passage in passages]
    defined: list[Definition] = []
    passing: list[Definition] = []
    for _, found in read:
        for sentence in found:
            d = parse_definition(sentence) or parse_other_forms(sentence)
            if d:
                defined.append(d)
            passing.extend(named_in_passing(sentence))
    corpus = " ".join(p.text.lower() for p, _ in read)
    taken = {d.sentence.start for d in defined}
    facts = [f for p, found in read for f in subject_facts(p, found, corpus) if f.sentence.start not in taken]
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
    return items


# "It is a K ..." right after a sentence about a term: the pronoun is that term (notes say what a thing does first).
IT_IS = re.compile(r"^It is (?P<pred>(?:a|an|the) [^;:]{8,})\.$")
MAX_JOINED_CHARS = 380  # two sentences quoted as one source must fit an explanation (schema.EXPLANATION_MAX)


def continued(read: Sequence[tuple[Any, Sequence[Sentence]]], found: Sequence[Definition]) -> list[Definition]:
    """Definitions that a sentence opening with "It is a/an/the ..." gives the term of the sentence before it.

    "A dropout layer takes the output of ... . It is a regularization technique used to ..." defines "dropout layer";
    the source is both sentences together, so the quoted explanation names the key.
    """
    by_start = {d.sentence.start: d for d in found}
    out = []
    for passage, sents in read:
        for prev, cur in itertools.pairwise(sents):
            match = IT_IS.match(cur.text.strip())
            d = by_start.get(prev.start)
            if not match or d is None or d.sentence.text != prev.text or not is_prose(cur.text):
                continue
            joined = passage.text[prev.start - passage.start : cur.end - passage.start]
            if len(joined) > MAX_JOINED_CHARS or not joined.startswith(prev.text) or not joined.endswith(cur.text):
                continue
            pred = match.group("pred")
            kind, head, relative = _kind(pred)
            source = Sentence(joined, prev.start, cur.end, passage)
            out.append(Definition(d.term, pred, kind, head, relative, source, d.aliases, article=d.article, verb="is"))
    return out


# Headings that name a part of a page, not a concept.
STRUCTURE_HEADINGS = frozenset(
    "introduction overview summary conclusion conclusions code example examples math maths references notes "
    "exercises procedure implementation background motivation discussion appendix contents intuition intuitions "
    "setup usage installation recap review further reading".split()
)
HEADING_STOP = frozenset("of to with for and or in on vs versus from by the a an our your how what why which".split())


def fold(word: str) -> str:
    """A word as names are compared: lower case, no hyphen or apostrophe, a crude plural fold ("trees" -> "tree")."""
    word = re.sub(r"[\-'’]", "", word.lower())
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def heading_anchor(heading: str) -> str:
    """The folded name a section heading gives a term ("Decision Trees" -> "decisiontree"), "" when it names none.

    A heading names a term when it is one to four plain words, not a part of a page ("Introduction", "Code"), with
    no preposition or conjunction ("Types of regression", "Zero counts and smoothing") and no gerund leading a phrase
    ("Making predictions").
    """
    words = heading.strip().split()
    if not 1 <= len(words) <= 4 or not all(re.fullmatch(r"[A-Za-z][A-Za-z0-9\-]*", w) for w in words):
        return ""
    low = [w.lower() for w in words]
    if " ".join(low) in STRUCTURE_HEADINGS or low[-1] in STRUCTURE_HEADINGS or set(low) & HEADING_STOP:
        return ""
    if len(words) > 1 and low[0].endswith("ing") and low[1].endswith("s"):
        return ""
    if not _term_ok(heading.strip()):
        return ""
    return "".join(fold(w) for w in words)


def _spelled(words: Sequence[str], anchor: str) -> tuple[int, int] | None:
    """The span of ``words`` whose folded, joined form is ``anchor`` ("batch norm" for "BatchNorm"), if any."""
    folded = [fold(w.strip(",;:()\"'“”")) for w in words]
    for i in range(len(words)):
        joined = ""
        for j in range(i, min(len(words), i + 6)):
            joined += folded[j]
            if joined == anchor:
                return i, j + 1
            if not anchor.startswith(joined):
                break
    return None


def heading_terms(passage: Any, found: Sequence[Sentence]) -> list[Definition]:
    """The terms a passage's headings name, each as its first prose sentence in the passage spells it (in passing).

    A heading the section's prose never uses ("Fully-connected/Linear", "Making predictions") gives nothing.
    """
    out = []
    for heading in (getattr(passage, "headings", ()) or ())[-1:]:  # its own section's heading, not the page title
        anchor = heading_anchor(heading)
        if not anchor:
            continue
        for sentence in found:
            if not is_prose(sentence.text):
                continue
            words = sentence.text.rstrip(".!").split()
            span = _spelled(words, anchor)
            if span is None:
                continue
            term = " ".join(w.strip(",;:()\"'“”") for w in words[span[0] : span[1]])
            # One common word ("Layers", "Training", "Pooling") is a heading's topic, too broad to be an answer.
            if (len(term.split()) >= 2 or _is_name(term)) and _term_ok(term) and term.lower() not in STOP_TERMS:
                out.append(Definition(term, "", "", "", "", sentence, passing=True))
            break
    return out


def _subject_splits(sentence: Sentence, corpus: str) -> list[tuple[str, list[str], str]]:
    """The ways a sentence reads as "[The] NOUN PHRASE VERBs REST": (article, noun phrase words, predicate).

    A candidate verb is a word ending in "s" or a modal. It is refused when what follows shows it was a plural noun
    ("Pooling layers often take ...", "Dropout layers are ..."), or when the noun phrase with that word as its last
    noun is a phrase the notes use ("dropout layer" is in the notes, so "Dropout layers zero ..." is not "Dropout").
    """
    body = sentence.text.strip().rstrip(".!")
    words = (without_aside(body) or body).split()
    article = words[0] if words and words[0] in ("The", "A", "An") else ""
    start = 1 if article else 0
    out = []
    for k in range(1, MAX_TERM_WORDS + 1):
        if start + k + 3 > len(words):
            break
        phrase, verb, rest = words[start : start + k], words[start + k], words[start + k + 1 :]
        if not all(re.fullmatch(r"[A-Za-z][A-Za-z0-9\-]*", w) for w in phrase):
            break
        last = phrase[-1]
        if k > 1 and last.islower() and (_finite_verb(last) or last.endswith("ly") or last in DESCRIBING):
            break  # "Precision equals the true ...", "Momentum also ...": the phrase ran past its verb
        if any(w.lower() in KIND_STOP or w.lower() in PREPOSITIONS for w in phrase):
            break
        passive = verb == "is" and bool(re.fullmatch(r"[a-z]+ed|used|known|built|made|done|given|set|shown", rest[0]))
        if not passive and (not _finite_verb(verb) or rest[0].lower() in NOT_AFTER_VERB):
            continue
        if rest[0].endswith("ly") and not rest[1].endswith(("ed", "en", "s")):
            continue  # "Dropout layers randomly drop ...": an adverb before a plain verb follows a plural noun
        if re.search(r": [A-Z0-9]", " ".join(rest)):  # "... they interact: Number of trees": a list ran into it
            break
        if (
            verb not in MODALS
            and not passive
            and re.search(rf"(?<![\w-]){re.escape(' '.join(phrase).lower())} {verb[:-1]}\b", corpus)
        ):
            continue
        out.append((article, phrase, " ".join([verb, *rest])))
    return out


# A non-restrictive clause about the noun phrase before it: "... we use cosine similarity, which looks only at ...".
WHICH_FACT = re.compile(
    r"\b(?:the|a|an|on|of|by|with|from|use|uses|using|called) (?P<term>[A-Za-z][\w\-'’]*(?: [A-Za-z][\w\-'’]*){0,2}), "
    r"which (?P<pred>(?P<verb>[a-z]+) [^,;:]{10,})$"
)


def which_fact(sentence: Sentence) -> Definition | None:
    """A term that a sentence's last clause says something about, with that clause as its predicate.

    In "... we use cosine similarity, which looks only at the angle between the vectors ..." the term is the noun
    phrase before ", which" and the predicate the clause.

    Only a phrase that reads as a name (several words, or a word shaped like a name) and a clause with a verb of its
    own are taken, so "... the batch, which is ..." or "... a layer, which ..." give nothing.
    """
    if not is_prose(sentence.text):
        return None
    match = WHICH_FACT.search(sentence.text.strip().rstrip(".!"))
    if not match or not _finite_verb(match.group("verb")) or match.group("pred").split()[1] in NOT_AFTER_VERB:
        return None
    term = match.group("term")
    if not _term_ok(term) or not (len(term.split()) >= 2 or _is_name(term)) or not _names_a_concept(term):
        return None
    if set(term.lower().split()) & (PREPOSITIONS | KIND_STOP | DESCRIBING) or term.split()[0].lower() in COMPARATIVES:
        return None  # "an increase of parameters, which", "a smoother loss surface, which": a description, not a name
    pred = match.group("pred")
    return Definition(term, pred, "", "", pred, sentence)


def _is_name(word: str) -> bool:
    """A word shaped like a name, not a common word: "MSE", "ID3", "BatchNorm", "fastText", "word2vec"."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{1,15}", word):
        return False
    return sum(c.isupper() for c in word) >= 2 or bool(re.search(r"[a-z][A-Z]|[a-z][0-9]", word))


def subject_facts(passage: Any, found: Sequence[Sentence], corpus: str = "") -> list[Definition]:
    """Terms that lecture notes name by their structure, each with the first sentence whose subject it is.

    Notes often say what a thing does instead of what it is: under the heading "BatchNorm", "BatchNorm accelerates
    convergence by ..."; in a list, "Gaussian naive Bayes assumes ..." beside "Bernoulli naive Bayes models ...".
    A sentence "[The] NOUN PHRASE VERBs ..." gives its noun phrase as a term when the phrase

    * contains what a heading of the passage names, with at most two more words ("A dropout layer takes ..." under
      "Dropout", "Max pooling layer will take ..." under "Pooling");
    * is one word shaped like a name ("MSE measures ...", "fastText extends ...");
    * or is one of two or more in the passage that share all but a first word (sibling kinds of one thing).

    The predicate is the verb phrase, so the question is "Which term VERBs ...?". The phrase's last word is no kind
    ("boosting" in "gradient boosting"), so such a term has none.
    """
    anchors = [a for a in (heading_anchor(h) for h in getattr(passage, "headings", ()) or ()) if a]
    splits = [(s, _subject_splits(s, corpus)) for s in found if is_prose(s.text)]
    firsts: dict[str, set[str]] = {}
    for _, options in splits:
        for _, phrase, _ in options:
            if len(phrase) >= 2:
                firsts.setdefault(" ".join(fold(w) for w in phrase[1:]), set()).add(fold(phrase[0]))
    siblings = {tail for tail, heads in firsts.items() if len(heads) >= 2}
    out = []
    for sentence, options in splits:
        for article, phrase, pred in options:
            term = " ".join(phrase)
            if not _term_ok(term) or (len(phrase) == 1 and term.lower() in GENERIC_NOUNS):
                continue
            if set(term.lower().split()) & DESCRIBING:
                continue  # "A typical dropout rate lies ...", "A large C punishes ...": a description, not a name
            # "... consists of 2 major component 1" (a list run into the sentence), "... capture this base case"
            # (it leans on the sentence before): no question can quote it alone.
            if re.search(r"\d$", pred) or re.search(r"\b(?:this|these|those)\b", pred, re.IGNORECASE):
                continue
            anchored = any((span := _spelled(phrase, a)) and len(phrase) - (span[1] - span[0]) <= 2 for a in anchors)
            sibling = len(phrase) >= 2 and " ".join(fold(w) for w in phrase[1:]) in siblings
            if anchored or sibling or (len(phrase) == 1 and _is_name(term)):
                out.append(Definition(term, pred, "", "", pred, sentence, article=article))
                break
    return out


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
