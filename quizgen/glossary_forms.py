"""The forms in which a sentence defines a term, read by rule.

"X is a K that ...", "X refers to ...", "X, also called Y, is ...", "... is called X" (:func:`parse_definition`, which
the grounded tutor also ranks sentences with), and the looser forms of ordinary notes (:func:`parse_other_forms`):
an opening phrase, an appositive, an aside, "a X: a ...", a labelled entry; terms named in passing
(:func:`named_in_passing`); "It is a K ..." after a sentence about a term (:func:`continued`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from quizgen.glossary_text import Definition, Sentence, quiz_prose
from quizgen.glossary_words import (
    BROAD_NOUNS,
    COMPARATIVES,
    DESCRIBING,
    KIND_STOP,
    MODALS,
    NOT_A_TERM_START,
    PREPOSITIONS,
    ROLE_HEADS,
    STOP_TERMS,
    finite_verb,
    kind_of,
    names_a_concept,
    term_ok,
)

COPULAS = ("is", "are", "refers to", "refer to", "means", "denotes")
NAMING = r"(?:is|are) (?:called|known as|termed|named|referred to as)"

_TERM = r"(?P<term>[A-Za-z][\w\-/'’]*(?: [\w\-/'’]+){0,4}?)"
_ABBR = r"(?: \((?:(?P<abbr>[A-Za-z][\w\-]{0,15})|[^()]{1,60})\))?"
_ALIAS = r", (?:(?:also |often |sometimes )?(?:called|known as)|short for) (?P<alias>[^,]{2,40}),"
COPULA_DEF = re.compile(
    rf"^(?P<article>The |A |An )?{_TERM}{_ABBR}(?:{_ALIAS})?" rf" (?P<verb>{'|'.join(COPULAS)}) (?P<pred>.+)$"
)
ALIAS_FACT = re.compile(rf"^(?P<article>The |A |An )?{_TERM}{_ABBR}{_ALIAS} (?P<pred>(?:\w+ly )?[a-z]+s .+)$")
ACRONYM = re.compile(r"(?P<term>(?:[A-Za-z][\w\-]* ){1,4}[A-Za-z][\w\-]*) \((?P<abbr>[A-Z][A-Za-z0-9]{1,7})\)")
# The acronym first, its expansion in brackets: "CBOW (continuous bag of words)", "ID3 (Iterative Dichotomiser 3)".
ACRONYM_FIRST = re.compile(r"\b(?P<abbr>[A-Z][A-Za-z0-9]{1,7}) \((?P<term>[A-Za-z][\w\-]*(?: [\w\-]+){1,5})\)")
LEANS = re.compile(r"\b(?:this|these|those)\b", re.IGNORECASE)  # a clause with them leans on another sentence
INITIALS_SKIP = frozenset("and of for the a an to in".split())  # "CART (Classification and Regression Trees)"
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
    r"^(?:(?:(?:In|For|Within|Under|With|At|On|By) [^,;:]{1,40}|In (?:short|practice|general|particular|other words)|"
    r"Here|Put simply|Simply put|Roughly speaking|[A-Z][a-z]+ly), |If [^,;:]{1,60}, then )(?=\S)"
)
# An adverb between a copula and its noun phrase: "Backpropagation is merely an application of the chain rule ...".
HEDGE = re.compile(r" (?P<verb>is|are) (?:merely|simply|just|essentially|basically|really|actually) (?=(?:a|an|the) )")
# A glossary entry or a labelled list item: "Stride: the number of pixels a filter moves at each step."
LABEL_DEF = re.compile(rf"^(?P<term>[A-Z][\w\-/'’]*(?: [\w\-/'’]+){{0,3}}?){_ABBR}: (?P<pred>(?:[Aa]n?|[Tt]he) .+)$")
# A labelled list item whose text is a clause: "Mode drift: the generator keeps producing ...". It names its label.
LABEL_ANY = re.compile(rf"^(?P<term>[A-Z][\w\-/'’]*(?: [\w\-/'’]+){{0,3}}?){_ABBR}: (?P<rest>[a-z][^:]{{10,}})$")
# Labels that name a part of an explanation, not a concept.
NOT_LABELS = frozenset(
    "note notes example examples answer question pros cons advantages disadvantages advantage disadvantage solution "
    "warning tip hint important remember idea intuition summary goal problem caution definition proof recall "
    "input output result step".split()
)
# An appositive names what the subject is before the sentence goes on: "Adam, an optimizer that ..., is ...".
APPOSITIVE_DEF = re.compile(
    rf"^(?P<article>The |A |An )?{_TERM}, (?P<pred>(?:a|an|the) [^,;:()]{{8,150}}), (?P<rest>[a-z]+) .+$"
)
# An aside between a subject and its verb: "Gradient boosting, introduced by Friedman in 2001, extends ...".
ASIDE = re.compile(
    r"^(?P<subject>(?:The |A |An )?[A-Za-z][\w\-]*(?: [\w\-]+){0,4}), [^,;:]{3,80}, (?P<rest>[a-z]+ .+)$"
)
# A which-clause aside says what its subject does: "Group normalization, which normalizes over groups of channels
# within one example, is a common choice for ...".
WHICH_ASIDE = re.compile(
    rf"^(?P<article>The |A |An )?{_TERM}, (?:which|that|who) (?P<pred>(?P<verb>[a-z]+) [^,;:()]{{8,120}}), "
    r"(?P<rest>[a-z]+) .+$"
)
# A term named, then defined after a colon: "... represent it by a one-hot vector: a vector as long as ...".
COLON_DEF = re.compile(
    r"\b(?P<article>a|an|the) (?P<term>[A-Za-z][\w\-]*(?: [A-Za-z][\w\-]*){0,2}): (?P<pred>(?:a|an|the) [^:;]{10,})$"
)
# A symbol or formula after a term's name: "The action-value function Q(s, a) is ...", "The weight matrix W is ...".
SYMBOL = re.compile(
    r"^(?P<subject>(?:The |A |An )?[A-Za-z][\w\-]*(?: [a-z][\w\-]*){0,3}) "
    r"(?:[A-Za-z](?:_?\w)?(?:\([^()]{1,20}\))?|\([^()]{1,20}\)) (?P<rest>(?:is|are) .+)$"
)
# An appositive that ends a sentence: "... the average gives the out-of-bag error, an estimate of test error that ...".
END_APPOSITIVE = re.compile(
    r"(?:^|\s)(?P<article>the|a|an) (?P<term>[A-Za-z][\w\-]*(?: [A-Za-z][\w\-]*){0,3}), "
    r"(?P<pred>(?:a|an) [^,;:()]{8,150})$"
)
# "X is defined as a ...", "We define X as the ...": a definition in so many words.
DEFINED_AS = (
    re.compile(rf"^(?P<article>The |A |An )?{_TERM}{_ABBR} (?:is|are|can be) defined as (?P<pred>(?:a|an|the) .+)$"),
    re.compile(rf"^We define (?P<article>the |a |an )?{_TERM}{_ABBR} as (?P<pred>(?:a|an|the) .+)$"),
)
# "This tension is called X": the sentence before says what X is.
THIS_IS_CALLED = re.compile(
    rf"^(?:This|These|Such an?) (?P<noun>[a-z][\w\-]*(?: [a-z][\w\-]*)?) {NAMING} (?:the |a |an )?[\"“‘']?"
    r"(?P<term>[A-Za-z][\w\-/' ]{1,50}?)[\"”’']?$"
)


# "It is a K ..." right after a sentence about a term: the pronoun is that term (notes say what a thing does first).
IT_IS = re.compile(r"^It(?: is|'s|’s) (?P<pred>(?:a|an|the) [^;:]{8,})\.$")
MAX_JOINED_CHARS = 380  # two sentences quoted as one source must fit an explanation (schema.EXPLANATION_MAX)


def parse_definition(sentence: Sentence) -> Definition | None:
    """The definition a sentence states, or None when it states none of the patterns above."""
    text = sentence.text.strip()
    if not quiz_prose(text):
        return None
    body = text.rstrip(".!").strip()
    match = COPULA_DEF.match(body)
    if match and term_ok(match.group("term")):
        term = match.group("term")
        if match.group("verb") in ("refers to", "means", "denotes") and re.match(r"(?:term|word|phrase) \S", term):
            term = term.split(" ", 1)[1]  # "The term layer error refers to ...": the term is "layer error"
        words = term.split()
        if len(words) >= 2 and words[-2].islower() and re.fullmatch(r"[A-HJ-Za-z]\d?|[a-z]\d?", words[-1]):
            if len(words) == 2:
                return None  # "The matrix W is the weight matrix of ...": a symbol and a plain noun name nothing
            term = " ".join(words[:-1])  # "The weight matrix W is ...": the name is "weight matrix", W its symbol
        pred = match.group("pred").strip()
        if match.group("verb") in ("is", "are") and not re.match(r"(?:a|an|the|one) ", pred, re.IGNORECASE):
            return None  # "X is used to ...", "X is that ...": a fact about X, not a definition
        if pred.lower().startswith(("the same", "the one", "the first", "the last", "the case")):
            return None
        kind, head, relative = kind_of(pred)
        aliases = tuple(a for a in (match.group("abbr"), match.group("alias")) if a)
        article = (match.group("article") or "").strip()
        plural = match.group("verb") in ("are", "refer to")
        return Definition(term, pred, kind, head, relative, sentence, aliases, article=article, plural=plural)
    match = ALIAS_FACT.match(body)
    if match and term_ok(match.group("term")):
        aliases = tuple(a for a in (match.group("abbr"), match.group("alias")) if a)
        article = (match.group("article") or "").strip()
        pred = match.group("pred")
        return Definition(match.group("term"), pred, "", "", pred, sentence, aliases, article=article)
    match = NAMING_DEF.match(body)
    if match and term_ok(match.group("term").strip()):
        # "Running many tests and reporting only the significant ones, which is called p-hacking": the thing named
        # is what comes before the relative pronoun.
        pred = re.sub(r",? (?:which|that)$", "", match.group("pred").strip())
        if pred.split()[0].lower() in NOT_A_TERM_START - {"a", "an", "the"} or pred.endswith((" and", " or", ",")):
            return None
        pred = pred[0].lower() + pred[1:]
        kind, head, relative = kind_of(pred)
        return Definition(match.group("term").strip(), pred, kind, head, relative, sentence, naming=True)
    return None


def reads_as_a_name(d: Definition | None) -> bool:
    """Whether a term found by the looser forms reads as a name: no describing word, no role for a head."""
    return d is not None and not set(d.term.lower().split()) & DESCRIBING and d.head not in ROLE_HEADS


def parse_other_forms(sentence: Sentence) -> Definition | None:
    """The definition a sentence states in a form less plain than :func:`parse_definition` reads.

    * after an opening phrase: "In a CNN, a convolution is a linear operation that ..." defines "convolution";
    * an appositive: "Adam, an optimizer that adapts each step size, is the default in many libraries.";
    * a definition with an aside after its subject: "Gradient boosting, introduced in 2001, is a ...";
    * a which-clause aside: "Group normalization, which normalizes over groups of channels, is ..." (what it does);
    * "a X: a ..." and a labelled entry: "Stride: the number of pixels the filter moves at each step.";
    * "The narrow middle layer is called the bottleneck." (what :func:`parse_definition` reads as "X is ..." first);
    * "X is defined as a ...", "We define X as the ...";
    * an appositive at the end: "... the average gives the out-of-bag error, an estimate of test error that ...";
    * a symbol after the term: "The action-value function Q(s, a) is the expected return after ..." defines
      "action-value function".

    The first form that gives a term reading as a name wins. Kept apart from :func:`parse_definition`, which the
    grounded tutor also ranks sentences with.
    """
    text = sentence.text.strip()
    if not quiz_prose(text):
        return None
    body = text.rstrip(".!").strip()
    forms = (_after_opener, _appositive, _with_aside, _which_aside, _colon, _label, _hedged, _with_symbol, _named)
    forms += (_defined_as,)
    for form in (*forms, _end_appositive):
        d = form(body, sentence)
        if reads_as_a_name(d):
            return d
    return None


def _after_opener(body: str, sentence: Sentence) -> Definition | None:
    opener = OPENER.match(body)
    return _read_as_plain(body[opener.end() :], sentence) if opener else None


def _hedged(body: str, sentence: Sentence) -> Definition | None:
    """A definition with an adverb after its copula, read without it (after an opening phrase too)."""
    opener = OPENER.match(body)
    rest = body[opener.end() :] if opener else body
    if not HEDGE.search(rest):
        return None
    return _read_as_plain(HEDGE.sub(lambda m: f" {m.group('verb')} ", rest, count=1), sentence)


def _read_as_plain(rest: str, sentence: Sentence) -> Definition | None:
    """What :func:`parse_definition` reads in ``rest`` as a sentence of its own, quoting ``sentence`` as the source.

    The term keeps the case the sentence wrote it in ("then backpropagation is ..." gives "backpropagation").
    """
    d = parse_definition(Sentence(rest[:1].upper() + rest[1:] + ".", sentence.start, sentence.end, sentence.passage))
    if d is None or d.naming:
        return None
    term = d.term if d.article or not rest.startswith(d.term[:1].lower() + d.term[1:]) else rest[: len(d.term)]
    return replace(d, term=term, sentence=sentence, verb=d.verb or _copula_of(rest))


def _appositive(body: str, sentence: Sentence) -> Definition | None:
    match = APPOSITIVE_DEF.match(body)
    if not match or not term_ok(match.group("term")):
        return None
    if not (finite_verb(match.group("rest")) or match.group("rest") == "is"):
        return None
    pred = match.group("pred")
    kind, head, relative = kind_of(pred)
    article = (match.group("article") or "").strip()
    return Definition(match.group("term"), pred, kind, head, relative, sentence, article=article, verb="is")


def _with_aside(body: str, sentence: Sentence) -> Definition | None:
    short = without_aside(body)
    if not short:
        return None
    d = parse_definition(Sentence(short + ".", sentence.start, sentence.end, sentence.passage))
    return replace(d, sentence=sentence, verb=d.verb or _copula_of(short)) if d is not None and not d.naming else None


def _which_aside(body: str, sentence: Sentence) -> Definition | None:
    match = WHICH_ASIDE.match(body)
    if not match or not term_ok(match.group("term")) or not finite_verb(match.group("verb")):
        return None
    if not (finite_verb(match.group("rest")) or match.group("rest") in ("is", "are")):
        return None
    if re.search(r"\b(?:this|these|those|it|they)\b", match.group("pred"), re.IGNORECASE):
        return None  # "..., which does this by ...,": the clause leans on another sentence
    pred = match.group("pred")
    return Definition(match.group("term"), pred, "", "", pred, sentence, article=(match.group("article") or "").strip())


def _defined_as(body: str, sentence: Sentence) -> Definition | None:
    match = DEFINED_AS[0].match(body) or DEFINED_AS[1].match(body)
    if not match or not term_ok(match.group("term")):
        return None
    if (match.group("article") or "").strip().lower() == "the" and match.group("term").lower() in BROAD_NOUNS:
        return None  # "The approach is defined as ...": the notes' own approach, pointed at, not a term
    pred = match.group("pred")
    kind, head, relative = kind_of(pred)
    aliases = (match.group("abbr"),) if match.group("abbr") else ()
    article = (match.group("article") or "").strip().capitalize()
    return Definition(match.group("term"), pred, kind, head, relative, sentence, aliases, article=article, verb="is")


def _end_appositive(body: str, sentence: Sentence) -> Definition | None:
    match = END_APPOSITIVE.search(body)
    if not match or not term_ok(match.group("term")) or not names_a_concept(match.group("term")):
        return None
    pred = match.group("pred")
    kind, head, relative = kind_of(pred)
    if not kind or _clause(kind) or not re.search(r" (?:of|that|which|who|used|for) ", pred) or LEANS.search(pred):
        return None  # "..., a model, a loss": a list, not what the term is
    words = match.group("term").lower().split()
    if set(words) & (DESCRIBING | COMPARATIVES) or words[-1] in KIND_STOP:
        return None  # "... carry the weights to, a look-ahead that ...": a stranded preposition ends no name
    if set(words) & (PREPOSITIONS - {"of"}):
        return None  # "We saved the model to disk, a step that ...": the phrase runs past the name into the verb's
    if set(re.split(r" (?:that|which|who) ", pred, maxsplit=1)[0].lower().split()) & (MODALS | {"is", "are", "was"}):
        return None  # "with a huge sample, a difference of 0.1 ml can be significant": a clause, no appositive
    article = match.group("article").capitalize()
    return Definition(match.group("term"), pred, kind, head, relative, sentence, article=article, verb="is")


def _named(body: str, sentence: Sentence) -> Definition | None:
    match = NAMING_DEF.match(body)
    if not match or not term_ok(match.group("term").strip()) or LEANS.match(body):
        return None
    pred = match.group("pred").strip()
    if not re.match(r"(?:The|A|An) [a-z]", pred) or pred.endswith((" and", " or", ",")) or " is " in pred:
        return None
    pred = pred[0].lower() + pred[1:]
    kind, head, relative = kind_of(pred)
    return Definition(match.group("term").strip(), pred, kind, head, relative, sentence, naming=True)


def _with_symbol(body: str, sentence: Sentence) -> Definition | None:
    match = SYMBOL.match(body)
    if not match or len(re.sub(r"^(?:The|A|An) ", "", match.group("subject")).split()) < 2:
        return None  # "The matrix W is the weight matrix of ...": a plain noun and its symbol name nothing
    d = parse_definition(Sentence(f"{match.group('subject')} {match.group('rest')}.", 0, 0, sentence.passage))
    return replace(d, sentence=sentence, verb=d.verb or _copula_of(match.group("rest"))) if d and not d.naming else None


def _colon(body: str, sentence: Sentence) -> Definition | None:
    match = COLON_DEF.search(body)
    if not match or not term_ok(match.group("term")):
        return None
    term = match.group("term")
    # "the return: the sum of all future rewards": the colon introduces the term, so a plain word is a name too.
    if not names_a_concept(term) and not (re.fullmatch(r"[a-z]{4,}", term) and term not in DESCRIBING):
        return None
    pred = match.group("pred")
    kind, head, relative = kind_of(pred)
    if not kind or _clause(kind):
        return None  # "the result: the model overfits": a clause after the colon, not what the term is
    article = match.group("article").capitalize()
    return Definition(match.group("term"), pred, kind, head, relative, sentence, article=article, verb="is")


def _label(body: str, sentence: Sentence) -> Definition | None:
    match = LABEL_DEF.match(body)
    if not match:
        match = LABEL_ANY.match(body)
        term = match.group("term") if match else ""
        if not term or not term_ok(term) or term.lower().split()[0] in NOT_LABELS or not_a_label(term) or len(term) < 5:
            return None
        return _described(term, match.group("abbr"), match.group("rest"), sentence)
    term = match.group("term")
    if not term_ok(term) or not_a_label(term) or term.lower().startswith(("step", "note")):
        return None
    pred = match.group("pred")
    pred = pred[:1].lower() + pred[1:]
    kind, head, relative = kind_of(pred)
    abbr = (match.group("abbr"),) if match.group("abbr") else ()
    # "Sparse autoencoder: a penalty keeps most units near zero.", "Kernel: A convolution layer can have ...": a clause
    # about something else, not what the term is; the entry names the term, no more.
    if _clause(kind) or set(kind.lower().split()) & (MODALS | {"is", "are", "was", "has", "have"}):
        return _described(match.group("term"), match.group("abbr"), match.group("pred"), sentence)
    return Definition(match.group("term"), pred, kind, head, relative, sentence, abbr, verb="is")


# The head words of labels that name a part of an explanation, not a concept: "Key idea:", "Training time:", "Bottom
# line:". Only the head word counts: "Input gate:" and "Output layer:" are terms.
NOT_LABEL_HEADS = frozenset(
    "idea ideas takeaway takeaways line lesson lessons point points time note notes tip tips summary example examples "
    "question questions answer answers intuition remark remarks caveat caveats".split()
)


def not_a_label(term: str) -> bool:
    """Whether a label's head word (its last) names a part of an explanation ("Key idea", "Training time")."""
    return term.lower().split()[-1] in NOT_LABEL_HEADS


def _described(term: str, abbr: str | None, text: str, sentence: Sentence) -> Definition:
    """A labelled entry whose text is a clause: the label with that text as what the notes describe it as.

    A text in lower case ("Denoising autoencoder: the input is corrupted with noise ...") describes its label; one that
    opens a sentence of its own ("Kernel: A convolution layer can have ...") only names it.
    """
    aliases = (abbr,) if abbr else ()
    if not text[:1].islower() or LEANS.search(text) or re.search(r"\b(?:it|its|they|them)\b", text):
        return Definition(term, "", "", "", "", sentence, aliases, passing=True)
    return Definition(term, text, "", "", "", sentence, aliases, described=True)


def _clause(kind: str) -> bool:
    """Whether a "kind" read after an article runs into a verb: a clause, not a noun phrase naming what a term is.

    "a penalty keeps most units ...", "the encoder outputs a mean ...", "a single classifier will not know ...".
    """
    words = kind.lower().split()
    if set(words[1:]) & (MODALS | {"is", "are", "was", "were", "has", "have"}):
        return True  # "the crowd: a single classifier will not know ...", "an activation function is used ..."
    if len(words) >= 2 and words[-1] in CLAUSE_AFTER_VERB:
        return True  # "the two players keep undoing each other's ...": a noun phrase never ends in "each"
    return any(
        finite_verb(w) and i + 1 < len(words) and words[i + 1] in CLAUSE_AFTER_VERB for i, w in enumerate(words[:-1])
    )


CLAUSE_AFTER_VERB = frozenset(
    "a an the most each every all only no some its their his her one two when if because as well better".split()
)


def without_aside(body: str) -> str | None:
    """``body`` without an aside between its subject and its verb, or None when it has none."""
    match = ASIDE.match(body)
    if not match:
        return None
    verb = match.group("rest").split(" ", 1)[0]
    if not (finite_verb(verb) or verb in ("is", "are", "refers", "means")):
        return None
    return f"{match.group('subject')} {match.group('rest')}"


def _copula_of(body: str) -> str:
    match = re.search(rf" ({'|'.join(COPULAS)}) ", body)
    return match.group(1) if match else ""


def named_in_passing(sentence: Sentence) -> list[Definition]:
    """Terms a sentence names without defining them: "a trick known as X", "maximum a posteriori (MAP)"."""
    text = sentence.text
    if not quiz_prose(text[:-1] + "." if text.endswith(":") else text):  # a lead-in names terms too ("GRU (...) has:")
        return []
    found = []
    for match in NAMED_IN_PASSING.finditer(text):
        term = match.group("term").strip()
        if " " not in term and term.islower() and text[match.end() :].startswith(" or "):
            continue  # "known as additive or Lidstone smoothing": a modifier of a coordinated name, not a name
        if term_ok(term) and term.lower() not in STOP_TERMS and names_a_concept(term):
            found.append(Definition(term, "", "", "", "", sentence, passing=True))
    for match in ACRONYM_FIRST.finditer(text):
        abbr, expansion = match.group("abbr"), match.group("term")
        if spells(abbr, expansion) and term_ok(expansion):
            found.append(Definition(abbr, "", "", "", "", sentence, (expansion,), passing=True))
    for match in ACRONYM.finditer(text):
        words, abbr = match.group("term").split(), match.group("abbr")
        for k in range(len(words), 0, -1):  # the shortest tail of words whose initials spell the acronym
            tail = words[-k:]
            if "".join(w[0] for w in tail).lower() == abbr.lower().rstrip("s") and term_ok(" ".join(tail)):
                found.append(Definition(" ".join(tail), "", "", "", "", sentence, (abbr,), passing=True))
                break
        else:  # a hyphenated word gives one initial per part: "deep Q-network (DQN)", "Lipschitz-continuous ..."
            for k in range(2 if len(words) > 1 else 1, len(words) + 1):
                tail = words[-k:]
                name = " ".join(tail)
                if tail[0].lower() not in INITIALS_SKIP and spells(abbr, name) and term_ok(name):
                    found.append(Definition(name, "", "", "", "", sentence, (abbr,), passing=True))
                    break
    return found


def leans_elsewhere(d: Definition) -> bool:
    """Whether what a sentence says its term does leans on another sentence ("prevents this by ..."): no question."""
    return bool(d.predicate) and d.relative == d.predicate and bool(LEANS.search(d.predicate))


def spells(abbr: str, name: str) -> bool:
    """Whether ``abbr`` is the initials of ``name`` ("CBOW", "continuous bag of words"; "BN", "batch normalization").

    Hyphenated words give one initial per part ("K-Nearest Neighbor" is "KNN"); small words may count or not
    ("CART", "Classification and Regression Trees"); a plural "s" on the acronym is allowed ("CNNs").
    """
    parts = [p for w in name.split() for p in re.split(r"[-/]", w) if p]
    want = abbr.lower().rstrip("s") if len(abbr) > 2 else abbr.lower()
    if len(parts) < 2 or not want.isalnum():
        return False
    every = "".join(p[0] for p in parts).lower()
    content = "".join(p[0] for p in parts if p.lower() not in INITIALS_SKIP).lower()
    return want in (every, content)


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
            if not match or d is None or d.sentence.text != prev.text or not quiz_prose(cur.text):
                continue
            joined = passage.text[prev.start - passage.start : cur.end - passage.start]
            if len(joined) > MAX_JOINED_CHARS or not joined.startswith(prev.text) or not joined.endswith(cur.text):
                continue
            pred = match.group("pred")
            kind, head, relative = kind_of(pred)
            source = Sentence(joined, prev.start, cur.end, passage)
            out.append(Definition(d.term, pred, kind, head, relative, source, d.aliases, article=d.article, verb="is"))
    return out


def called_after(read: Sequence[tuple[Any, Sequence[Sentence]]]) -> list[Definition]:
    """Terms that "This/These NOUN is called X" names after a sentence saying what the NOUN is.

    "An agent that always exploits may never find better actions. This tension is called the exploration-exploitation
    trade-off." names the trade-off; the predicate is the subject ("this tension", leaning on the sentence before),
    and the source is both sentences, so a question quotes what the name stands for.
    """
    out = []
    for passage, sents in read:
        for prev, cur in itertools.pairwise(sents):
            match = THIS_IS_CALLED.match(cur.text.strip().rstrip(".!"))
            if not match or not quiz_prose(prev.text) or not quiz_prose(cur.text) or LEANS.match(prev.text):
                continue
            term = match.group("term").strip()
            if not term_ok(term) or term.lower() in STOP_TERMS:
                continue
            joined = passage.text[prev.start - passage.start : cur.end - passage.start]
            if len(joined) > MAX_JOINED_CHARS or not joined.startswith(prev.text) or not joined.endswith(cur.text):
                continue
            subject = cur.text.split(" is ", 1)[0].split(" are ", 1)[0]
            source = Sentence(joined, prev.start, cur.end, passage)
            out.append(Definition(term, subject[:1].lower() + subject[1:], "", "", "", source, naming=True))
    return out
