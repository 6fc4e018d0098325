"""Words and word-level tests: what reads as the name of a concept, a kind, a verb.

The glossary's rules read noun phrases off sentences; these lists and predicates decide whether a phrase is a name a
question can ask for ("dropout rate") or words a sentence happens to use ("the output", "a typical rate").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Words a term never starts with: pronouns, determiners and openers of a clause, not names of things.
NOT_A_TERM_START = frozenset(
    "it this that these those there here we you they one each every such its our your their in for when if "
    "because since while although however thus so but and or as at on by with from to of after before during "
    "then what which who how why where some many most all any both either neither no not another other only "
    "also first second third finally next example note suppose let given below above following once unless until "
    "whenever whereas though whether".split()
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
    "known computed defined made given such as into over under between than like whose both either after before at "
    "if while during without within across through via per along".split()
)
VAGUE_KINDS = frozenset("type kind form sort class family variant version category".split())
PREPOSITIONS = frozenset("from in of by with to on at for into through under over about".split())
FINITE_VERBS = frozenset("can may will must should could might".split())
NOT_VERBS = frozenset("its this his their as is has was".split()) - {"is", "has"}
STOP_TERMS = frozenset("it this that them these those one something anything the result the method".split())
MAX_TERM_WORDS = 5
MAX_KIND_WORDS = 8
# Words that grade a thing rather than name it ("a smoother loss surface", "a larger batch").
COMPARATIVES = frozenset(
    "more less fewer larger smaller bigger better worse faster slower higher lower simpler smoother deeper wider "
    "greater stronger weaker longer shorter easier harder cheaper".split()
)
MODALS = frozenset("can will may must should could might".split())
# Words ending in "s" that are not the verb of a singular subject.
NOT_S_VERBS = frozenset(
    "is was as its this his thus yes less always perhaps sometimes towards whereas besides us does across "
    "various previous famous numerous series species bias lens news gas".split()
)
# Words that, right after a candidate verb, show it was a plural noun ("Pooling layers often take ...").
NOT_AFTER_VERB = frozenset(
    "is are was were be been not often also usually typically generally always never sometimes only can will may "
    "might must should could would have has do does".split()
)

# Words that describe or grade a thing in a sentence, not part of its name ("A typical dropout rate lies ...", "a large
# C", "Overfitting typically shows ..."), and heads that name a role ("X is the usual choice").
DESCRIBING = frozenset(
    "typical typically usual usually common commonly large small big good bad new old main different same high low "
    "whole entire little much many few real actual also often still even then again apart together away well too "
    "cannot does do did".split()
)
# Nouns so broad that alone, or after words that only size, judge or qualify them, they name no concept: "A model is
# calibrated when ...", "with a huge sample, ...", "The default assumption is ...". With a naming modifier they do
# ("language model", "bootstrap sample").
BROAD_NOUNS = frozenset(
    "model models method methods approach approaches system systems data sample samples value values result results "
    "function functions algorithm algorithms technique techniques process procedure assumption assumptions quantity "
    "estimate estimates variable variables measure".split()
)
VAGUE_MODIFIERS = DESCRIBING | frozenset(
    "huge tiny default simple perfect given certain particular single basic general standard best better worse "
    "naive plain ordinary original final initial usual proper correct right wrong ideal".split()
)
# Parts of a document: "The figure plots ...", "The dashed line shows ...", "The code below computes ...". After "A"
# one may be a term ("A reliability diagram groups ..."), and after a name-shaped word too ("The ROC curve plots ...").
FURNITURE = frozenset(
    "figure figures table tables diagram diagrams plot plots chart charts graph graphs line lines curve curves code "
    "listing snippet example examples exercise exercises page section chapter slide box panel".split()
)
# People in a document: "The student picks a learning rate ...". Never a term.
PEOPLE = frozenset(
    "student students reader readers author authors teacher teachers instructor lecturer learner learners person "
    "people user users researcher researchers".split()
)


def vague_broad(words: Sequence[str]) -> bool:
    """Whether words are a broad noun after modifiers that only size, judge or qualify it ("huge sample")."""
    low = [w.lower() for w in words]
    return len(low) >= 2 and low[-1] in BROAD_NOUNS and all(w in VAGUE_MODIFIERS or adverb(w) for w in low[:-1])


def adverb(word: str) -> bool:
    """Whether a word reads as an adverb ("perfectly", "fully"): it qualifies, it does not name."""
    return len(word) > 4 and word.endswith("ly") and word not in ("family", "anomaly", "assembly", "supply", "reply")


# Words that compare with what the sentence before said: "Median imputation uses the median instead", "Fine-tuning
# goes one step further". A sentence with one asks nothing on its own.
LEANS_ON_BEFORE = re.compile(r"\b(?:instead\b(?! of\b)|further\b)", re.IGNORECASE)
ROLE_HEADS = frozenset("choice option default goal way idea thing part reason problem point case".split())


def term_ok(term: str) -> bool:
    """Whether a phrase can be a term: a few words, not a clause, a number, a symbol or a role ("the output")."""
    words = term.split()
    if not 1 <= len(words) <= MAX_TERM_WORDS or words[0].lower() in NOT_A_TERM_START:
        return False
    if any(w.lower() in ("is", "are", "was", "were", "can", "may", "will", "has", "have", "not") for w in words):
        return False
    if any(w.isdigit() for w in words):  # "A value near 1 means ...": a number is not part of a name
        return False
    if (len(words) == 1 and term.lower() in GENERIC_NOUNS) or any(w.lower() in ("thing", "things") for w in words):
        return False
    if vague_broad(words):  # "huge sample", "default assumption": a description, not a name
        return False
    if sum(ch.isalpha() for ch in term) < 2:  # "C' is the derivative ...": a symbol, not a name
        return False
    if len(words) >= 2 and words[1].lower() in ("a", "an", "the", "our", "your", "its"):
        return False  # "Training a model is ...": a verb phrase, not the name of a concept
    if len(words) >= 2 and words[-1].lower() in ("a", "an", "the", "all", "each", "every", "its", "their", "this"):
        return False  # "Fine-tuning all the layers on ...": the name ends before its noun, no name at all
    return len(term) >= 2 and not term.isdigit()


def kind_of(predicate: str) -> tuple[str, str, str]:
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
    return " ".join(kind), head, subject_relative(predicate)


def subject_relative(predicate: str) -> str:
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


def finite_verb(word: str) -> bool:
    """Whether ``word`` reads as the verb of a singular subject: "adds", "controls", "can" (not "is": a copula)."""
    if word in MODALS:
        return True
    if not re.fullmatch(r"[a-z]{3,}", word) or word in NOT_S_VERBS:
        return False
    return word.endswith("s") and not word.endswith(("ss", "us", "ous", "is"))


def names_a_concept(term: str) -> bool:
    """A term named in passing is kept when it reads as a name: several words, an acronym, or a long word.

    "called output", "as below", "C'" are words a sentence happens to use, not concepts a question can ask for.
    """
    words = term.split()
    if any(w.lower() in ("a", "an", "the", "this", "that", "these", "our", "your", "its") for w in words):
        return False
    # A possessive names a concept after a person when another word follows ("Bayes' theorem", "Newton's method").
    if not all(re.fullmatch(r"[A-Za-z][A-Za-z\-]*", w) for w in words[-1:]):
        return False
    if not all(re.fullmatch(r"[A-Za-z][A-Za-z\-]*(?:'s?|’s?)?", w) for w in words[:-1]):
        return False
    return len(words) >= 2 or (term.isupper() and len(term) >= 2) or len(term) >= 8


def is_name(word: str) -> bool:
    """A word shaped like a name, not a common word: "MSE", "ID3", "BatchNorm", "fastText", "word2vec"."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{1,15}", word):
        return False
    return sum(c.isupper() for c in word) >= 2 or bool(re.search(r"[a-z][A-Z]|[a-z][0-9]", word))


def has_verb(text: str) -> bool:
    """Whether a sentence has a verb of its own, not a caption ("Random Forest Classifier using ID3 Tree: example.")."""
    auxiliaries = {"is", "are", "was", "were", "be", "been", "has", "have", "had", "do", "does", "did"} | MODALS
    words = [w.strip(".,;:()\"'").lower() for w in text.split()]
    if any(w in ("we", "you", "they", "i") for w in words[:-1]):  # "... we need to find ...": a plain verb follows
        return True
    return any(w in auxiliaries or finite_verb(w) or re.fullmatch(r"[a-z]{3,}ed", w) for w in words[1:])
