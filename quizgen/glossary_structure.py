"""Terms that notes name by their structure rather than by a defining sentence.

A section heading's subject ("A dropout layer takes ..." under "Dropout"), sibling kinds ("Gaussian / Bernoulli naive
Bayes ..."), a name-shaped word ("MSE measures ..."), "..., which VERBs ..." after a name, and a heading the section's
prose spells out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from quizgen.glossary_forms import LEANS, OPENER, without_aside
from quizgen.glossary_text import Definition, Sentence, fold, quiz_prose
from quizgen.glossary_words import (
    BROAD_NOUNS,
    COMPARATIVES,
    DESCRIBING,
    FURNITURE,
    GENERIC_NOUNS,
    KIND_STOP,
    LEANS_ON_BEFORE,
    MAX_TERM_WORDS,
    MODALS,
    NOT_A_TERM_START,
    NOT_AFTER_VERB,
    PEOPLE,
    PREPOSITIONS,
    STOP_TERMS,
    VAGUE_MODIFIERS,
    adverb,
    finite_verb,
    has_verb,
    is_name,
    names_a_concept,
    term_ok,
)

# Headings that name a part of a page, not a concept.
STRUCTURE_HEADINGS = frozenset(
    "introduction overview summary conclusion conclusions code example examples math maths references notes "
    "exercises procedure implementation background motivation discussion appendix contents intuition intuitions "
    "setup usage installation recap review further reading".split()
)
HEADING_STOP = frozenset("of to with for and or in on vs versus from by the a an our your how what why which".split())


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
    if not term_ok(heading.strip()):
        return ""
    return "".join(fold(w) for w in words)


def spelled(words: Sequence[str], anchor: str) -> tuple[int, int] | None:
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
            if not quiz_prose(sentence.text) or not has_verb(sentence.text):
                continue
            words = sentence.text.rstrip(".!").split()
            span = spelled(words, anchor)
            if span is None:
                continue
            term = " ".join(w.strip(",;:()\"'“”") for w in words[span[0] : span[1]])
            # One common word ("Layers", "Training", "Pooling") is a heading's topic, too broad to be an answer.
            if (len(term.split()) >= 2 or is_name(term)) and term_ok(term) and term.lower() not in STOP_TERMS:
                out.append(Definition(term, "", "", "", "", sentence, passing=True))
            break
    return out


def subject_splits(sentence: Sentence, corpus: str) -> list[tuple[str, list[str], str]]:
    """The ways a sentence reads as "[The] NOUN PHRASE VERBs REST": (article, noun phrase words, predicate).

    A candidate verb is a word ending in "s" or a modal. It is refused when what follows shows it was a plural noun
    ("Pooling layers often take ...", "Dropout layers are ..."), or when the noun phrase with that word as its last
    noun is a phrase the notes use ("dropout layer" is in the notes, so "Dropout layers zero ..." is not "Dropout").
    """
    body = sentence.text.strip().rstrip(".!")
    opener = OPENER.match(body)  # "In short, BN lets us ...": the subject follows the opening phrase
    body = body[opener.end() :] if opener else body
    words = (without_aside(body) or body).split()
    article = words[0] if words and words[0] in ("The", "A", "An", "the", "a", "an") else ""
    start = 1 if article else 0
    out = []
    for k in range(1, MAX_TERM_WORDS + 1):
        if start + k + 3 > len(words):
            break
        phrase, verb, rest = words[start : start + k], words[start + k], words[start + k + 1 :]
        if not all(re.fullmatch(r"[A-Za-z][A-Za-z0-9\-]*", w) for w in phrase):
            break
        last = phrase[-1]
        if k > 1 and last.islower() and (finite_verb(last) or last.endswith("ly") or last in DESCRIBING):
            break  # "Precision equals the true ...", "Momentum also ...": the phrase ran past its verb
        if any(w.lower() in KIND_STOP or w.lower() in PREPOSITIONS for w in phrase):
            break
        participle = rest[1] if rest[0].endswith("ly") and len(rest) > 2 else rest[0]  # "is only used to ..."
        passive = verb == "is" and bool(re.fullmatch(PARTICIPLE, participle))
        if not passive and (not finite_verb(verb) or rest[0].lower() in NOT_AFTER_VERB):
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


PARTICIPLE = r"[a-z]+ed|used|known|built|made|done|given|set|shown"  # "X is used to ...": a passive fact about X
# Words that, right after "which WORD", show that WORD was a noun (", which parts are ..."); adverbs do not.
AUXILIARIES = frozenset("is are was were be been can will may might must should could would have has do does".split())
# A non-restrictive clause about the noun phrase before it: "... we use cosine similarity, which looks only at ...".
WHICH_FACT = re.compile(
    r"\b(?:the|a|an|on|of|by|with|from|use|uses|using|called) (?P<term>[A-Za-z][\w\-'’]*(?: [A-Za-z][\w\-'’]*){0,2}), "
    r"which (?P<pred>(?P<verb>[a-z]+) [^,;:]{10,})$"
)
# The same clause on the first of two things a sentence lists: "... two tricks: an experience replay buffer, which
# stores past transitions ..., and a target network ...". The next item shows the clause is about the noun before it,
# not about the whole sentence (as in "... grows with the sequence length, which makes long inputs expensive").
WHICH_IN_LIST = re.compile(
    r"\b(?:the|a|an) (?P<term>[A-Za-z][\w\-'’]*(?: [A-Za-z][\w\-'’]*){0,2}), "
    r"which (?P<pred>(?P<verb>[a-z]+) [^,;:]{10,}?)(?=, (?:and|or) (?:a|an|the) )"
)


def which_fact(sentence: Sentence) -> Definition | None:
    """A term that a sentence's last clause, or one on the first of two listed things, says something about.

    The clause is the predicate.

    In "... we use cosine similarity, which looks only at the angle between the vectors ..." the term is the noun
    phrase before ", which" and the predicate the clause.

    Only a phrase that reads as a name (several words, or a word shaped like a name) and a clause with a verb of its
    own are taken, so "... the batch, which is ..." or "... a layer, which ..." give nothing.
    """
    if not quiz_prose(sentence.text):
        return None
    body = sentence.text.strip().rstrip(".!")
    match = WHICH_FACT.search(body) or WHICH_IN_LIST.search(body)
    if not match or not finite_verb(match.group("verb")) or match.group("pred").split()[1] in AUXILIARIES:
        return None  # ", which parts are ...": the word after "which" was a noun ("looks only at" is a verb)
    if LEANS.search(match.group("pred")):
        return None
    term = match.group("term")
    if not term_ok(term) or not (len(term.split()) >= 2 or is_name(term)) or not names_a_concept(term):
        return None
    if set(term.lower().split()) & (PREPOSITIONS | KIND_STOP | DESCRIBING) or term.split()[0].lower() in COMPARATIVES:
        return None  # "an increase of parameters, which", "a smoother loss surface, which": a description, not a name
    pred = match.group("pred")
    return Definition(term, pred, "", "", pred, sentence)


def _kind_of_heading(phrase: Sequence[str], heads: set[str]) -> bool:
    """Whether ``phrase`` is a plain modifier and a heading's head noun ("static embedding" under "Word Embeddings")."""
    if len(phrase) != 2 or fold(phrase[1]) not in heads or not phrase[0].isalpha() or not phrase[0].islower():
        return False
    return phrase[0] not in DESCRIBING | COMPARATIVES | NOT_A_TERM_START | GENERIC_NOUNS


# Words that open what a verb takes after it ("maps each state ...", "expresses the value ...", "feeds a label to ..."):
# after a candidate verb they show it was one, where a plural noun ("examples show", "methods such as") is not.
OBJECT_START = frozenset(
    "a an the each every all any some no one two three its their his her both only several many more most much "
    "to from into over across between through with by in on for as when whenever if".split()
)


# Words that judge or place a thing rather than name it: "A practical heuristic picks ...", "The diagram below shows".
EVALUATIVE = frozenset(
    "practical simple simplest general useful popular standard basic classic natural obvious important easy hard "
    "best worst nice clever neat great key good bad possible".split()
)
PLACED = frozenset(
    "below above following previous next former latter last first resulting remaining corresponding existing "
    "underlying preceding given same other".split()
)


def introduced(phrase: Sequence[str], earlier: str, pred: str, article: str = "A") -> bool:
    """Whether "A/An/The PHRASE VERBs ..." introduces PHRASE: its document names it here for the first time.

    Notes bring in a concept by saying what it does ("A policy maps each state to an action", "The Bellman equation
    expresses ..."); a later sentence with the same subject is about a thing already met. The verb must take an
    object or a phrase (:data:`OBJECT_START`), be a passive or a modal, so that a plural noun read as a verb ("The
    training examples show that ...") is not taken.

    Most sentences of notes open so without naming anything, so the phrase must look like a name: "The NOUN"
    alone points at a thing in view ("The optimizer takes a step ..."), where "A NOUN" brings one in; a part of
    the document or a person ("The figure plots ...", "The student picks ...") is no term, nor a phrase that ends
    in a symbol ("The price p is set ..."), nor a broad noun alone or after a word that sizes or qualifies it ("A
    model is calibrated when ...", "A perfectly calibrated model lies ...").
    """
    low = {w.lower() for w in phrase}
    if low & (COMPARATIVES | EVALUATIVE | PLACED) or phrase[0].lower() in GENERIC_NOUNS:
        return False  # "A more general version ...", "A practical heuristic ...", "The diagram below ...": no name
    last, the = phrase[-1].lower(), article.strip() == "The"
    if (the and len(phrase) < 2) or last in PEOPLE or re.fullmatch(r"[A-Za-z]", phrase[-1]):
        return False
    if last in FURNITURE and the and not any(is_name(w) or w[:1].isupper() for w in phrase[:-1]):
        return False
    if last in BROAD_NOUNS and (
        len(phrase) == 1 or any(w.lower() in VAGUE_MODIFIERS or adverb(w.lower()) for w in phrase[:-1])
    ):
        return False
    name = " ".join(fold(w) for w in phrase)
    seen = " ".join(fold(w) for w in re.findall(r"[\w\-'’]+", earlier))
    if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", seen):
        return False
    words = pred.split()
    if len(words) < 3 or re.search(r"; |, (?:and|but|while|whereas) (?:the|a|an|its|this) ", pred):
        return False  # "The encoder maps ..., and the decoder maps ...": two subjects, no one term to ask for
    verb, after = words[0], words[1].lower().strip(",")
    if verb == "is":
        if after in ("called", "known", "termed", "named", "referred"):
            return False  # "The narrow middle layer is called the bottleneck": a sentence naming something else
        return bool(re.fullmatch(PARTICIPLE, after)) or (
            after.endswith("ly") and bool(re.fullmatch(PARTICIPLE, words[2]))
        )
    if verb in MODALS:
        return after in ("be", "not") or (after.isalpha() and not after.endswith("s"))
    # A plural object ("finds items rated ...", "stores transitions"), but not a plain verb after a plural noun read as
    # the verb ("The training examples show ...").
    return after in OBJECT_START or (after.endswith("s") and not after.endswith("ss") and after not in NOT_AFTER_VERB)


def subject_facts(passage: Any, found: Sequence[Sentence], corpus: str = "", earlier: Any = None) -> list[Definition]:
    """Terms that lecture notes name by their structure, each with the first sentence whose subject it is.

    Notes often say what a thing does instead of what it is: under the heading "BatchNorm", "BatchNorm accelerates
    convergence by ..."; in a list, "Gaussian naive Bayes assumes ..." beside "Bernoulli naive Bayes models ...".
    A sentence "[The] NOUN PHRASE VERBs ..." gives its noun phrase as a term when the phrase

    * contains what a heading of the passage names, with at most two more words ("A dropout layer takes ..." under
      "Dropout", "Max pooling layer will take ..." under "Pooling");
    * is one word shaped like a name ("MSE measures ...", "fastText extends ...");
    * is a describing word and the last word of a heading that names a term: a kind of what the page is about
      ("A static embedding assigns ..." under "Word Embeddings");
    * is one of two or more in the passage that share all but a first word (sibling kinds of one thing);
    * or follows "A", "An" or "The" and is named here for the first time in its document (see :func:`introduced`;
      ``earlier`` gives the document's text before a sentence).

    The predicate is the verb phrase, so the question is "Which term VERBs ...?". The phrase's last word is no kind
    ("boosting" in "gradient boosting"), so such a term has none.
    """
    headings = getattr(passage, "headings", ()) or ()
    anchors = [a for a in (heading_anchor(h) for h in headings) if a]
    heads = {fold(h.split()[-1]) for h in headings if heading_anchor(h) and len(h.split()) >= 2}
    splits = [(s, subject_splits(s, corpus)) for s in found if quiz_prose(s.text)]
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
            if not term_ok(term) or (len(phrase) == 1 and term.lower() in GENERIC_NOUNS):
                continue
            if set(term.lower().split()) & DESCRIBING:
                continue  # "A typical dropout rate lies ...", "A large C punishes ...": a description, not a name
            # "... consists of 2 major component 1" (a list run into the sentence), "... capture this base case"
            # (it leans on the sentence before): no question can quote it alone.
            if re.search(r"\d$", pred) or re.search(r"\b(?:this|these|those)\b", pred, re.IGNORECASE):
                continue
            # "Median imputation uses the median instead, ...": instead of what the sentence before said. The name
            # stays known (no blank inside it, a wrong option); the sentence asks nothing.
            instead = bool(LEANS_ON_BEFORE.search(pred))
            if "; " in pred or re.search(r"\bboth\b(?!(?: [\w\-]+){1,3} and\b)", pred):
                continue  # "ARIMA combines both with differencing; its order ...": "both" leans on the sentence before
            anchored = any((span := spelled(phrase, a)) and len(phrase) - (span[1] - span[0]) <= 2 for a in anchors)
            sibling = len(phrase) >= 2 and " ".join(fold(w) for w in phrase[1:]) in siblings
            # Without an article the "-s" word read as the verb is too often a plural ("Leo Breiman introduced random
            # forests ..."): only "A/An/The NOUN PHRASE" introduces a term.
            first = (
                article
                and earlier is not None
                and sentence.text.startswith(article)
                and introduced(phrase, earlier(sentence), pred, article)
            )
            if anchored or sibling or first or _kind_of_heading(phrase, heads) or (len(phrase) == 1 and is_name(term)):
                if instead:
                    out.append(Definition(term, "", "", "", "", sentence, article=article, passing=True))
                else:
                    out.append(Definition(term, pred, "", "", pred, sentence, article=article))
                break
    return out
