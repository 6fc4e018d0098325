"""The item-writing-flaw rubric: the rules of Moore et al.'s 19-flaw rubric (EC-TEL 2023) that a rule can catch.

A flaw marks a weaker question, not a broken one: an item with at most one flaw counts as acceptable
(:func:`is_acceptable`, as SAQUET counts). Like :mod:`quizgen.checks`, every rule is a pure function that returns a
reason a person can read, or None, and none trusts the schema (an imported quiz may break it).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from quizgen.checks import Check, normalise, safe
from quizgen.schema import LETTERS, Question

# # Moore, Nguyen, Chen and Stamper, "Assessing the quality of multiple-choice questions using GPT-4 and rule-based
# methods", EC-TEL 2023 (arXiv:2307.08161): 19 flaws from Tarrant et al. (2006) and Costello et al. (2018); their
# rule-based detector found 91% of the flaws experts found in 200 questions. Each rule below carries the paper's
# flaw name. Two of the 19 need judgement no rule here has: "gratuitous information in stem" and "logical cues"
# (the lexical part of a logical cue, a word shared by stem and key alone, is "word repeats").

KEY_LONGER_BY = 0.20  # the key is more than 20% longer (in characters) than the LONGEST wrong option ...
KEY_LONGER_MIN = 4  # ... and by at least 4 characters (a word), so "Adam" against "SGD" is no cue
CONVERGENCE_MIN = 1.0  # the key's words (beyond those all options share) recur in this many other options, on average
NEAR_DUPLICATE_EMBEDDING = 0.85  # stems at least this similar by embedding ask the same (see near_duplicates)

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each either etc few for from further had has have having he her
    here hers him his how i if in into is it its itself just may me might more most must my neither no nor not now of
    off on once one only or other our out over own same she should so some such than that the their them then there
    these they this those through to too under until up upon us very via was we were what when where whether which
    while who whom whose why will with would you your following true false correct incorrect best statement
    statements option options answer answers question questions topic example describe describes described mean
    means called term use used using new different many much less""".split()
)
# Words that say nothing about WHAT is asked: a stem made only of these and stopwords names nothing.
GENERIC = frozenset("thing things something kind type way part one ones".split())
ABSOLUTE = re.compile(
    r"\b(always|never|all|none|only|every|everything|nothing|nobody|completely|entirely|totally|absolutely|"
    r"invariably|impossible|guarantees?|guaranteed|must|cannot|no one)\b"
)
VAGUE = re.compile(
    r"\b(frequently|occasionally|rarely|seldom|usually|sometimes|often|generally|typically|commonly|normally|mostly|"
    r"might|may|could|possibly|perhaps|probably|likely|somewhat|fairly|relatively)\b"
)
NEGATIVE = re.compile(r"\b(not|except|least|never|cannot|incorrect|untrue)\b|\b[a-z]+n't\b", re.IGNORECASE)
BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__|<(?:b|strong)>(.+?)</(?:b|strong)>", re.IGNORECASE)
BLANK = re.compile(r"_{2,}|\.{3}|\u2026|\[blank\]|\(\s*\)", re.IGNORECASE)
ALL_ABOVE = re.compile(r"\ball of (the )?(above|these|them|those|the options|the answers)\b")
NONE_ABOVE = re.compile(r"\bnone of (the )?(above|these|them|those|the options|the answers)\b")
K_TYPE = re.compile(
    r"^(both|neither)( of (the )?(above|these|them|those|the options))?$"  # "Both", "Neither of these"
    r"|^(both|either|neither) [a-d] (and|or|nor) [a-d]$"  # "Both A and B"
    r"|^(options? )?[a-d]( (and|or)? ?(options? )?[a-d])+$"  # "A and B", "A, C and D" (normalised: "a c and d")
    r"|\b(i|ii|iii|iv)( (and|or)? ?(i|ii|iii|iv))+\b"  # "I and III"
)
TRUE_FALSE_OPTION = re.compile(r"^(true|false|yes|no|right|wrong|correct|incorrect)$")
TRUE_FALSE_STEM = re.compile(  # on normalised text: "which of the following statements about X is true"
    r"\btrue or false\b|\bwhich\b.{0,80}?\b(statements?|of the following|of these|options?|answers?)\b.{0,80}?"
    r"\b(is|are) (true|false|correct|incorrect|accurate|inaccurate|right|wrong)\b"
)
QUESTION_START = re.compile(
    r"^(what|which|who|whom|whose|when|where|why|how|is|are|does|do|did|can|could|should|would|will|in what|"
    r"choose|select|identify|name|pick|give|complete|find|state|determine|match|according)\b"
)
# Markup, code or schema debris ("}, {", "difficulty:medium,", "./notes.csv"): no student would pick it.
MARKUP = re.compile(r"[{}\[\]<>|=_*\\#`]|\w:\w|:\s*$|\./|\.(csv|json|py|txt|md)\b", re.IGNORECASE)
# What a small model copies from its prompt: placeholders, "field:" labels, the seams of JSON ("}, {", "`key`:").
SCHEMA_DEBRIS = re.compile(r"\{[A-Za-z_]+\}|\b[a-z]+_[a-z_]+:|[\]}]\s*,\s*[\[{]|`\w+`\s*:|\bNone\s*\}")
BARE_NUMBER = re.compile(r"^[-+]?[$\u20ac\u00a3]?(\d[\d,]*(\.\d+)?|\.\d+)\s*%?$")
NUMBER = re.compile(r"^[-+]?[$\u20ac\u00a3]?(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?\s*(?:%|[a-z]{1,8})?$")


@dataclass(frozen=True)
class Flaw:
    """One item-writing flaw found in a question: the rubric's name for it and why it applies here."""

    rule: str  # the flaw's name in Moore et al.'s rubric, e.g. "longest option correct"
    reason: str  # what in this question shows it, and what to do

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason}"


def _fold(word: str) -> str:
    # A crude plural fold ("layers" -> "layer", "probabilities" -> "probability"): enough to see a repeated word.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> dict[str, str]:
    """The words of ``text`` that carry meaning (no stopwords), folded form -> the word as written (lower case)."""
    words: dict[str, str] = {}
    for word in normalise(text).split():
        if word not in STOPWORDS:
            words.setdefault(_fold(word), word)
    return words


def _distractors(q: Question) -> list[tuple[str, str]]:
    return [(letter, option) for letter, option in zip(LETTERS, q.options, strict=False) if letter != q.answer]


def _options(found: Sequence[str]) -> str:
    return f"options {', '.join(found[:-1])} and {found[-1]}" if len(found) > 1 else f"option {found[0]}"


def ambiguous_or_unclear(q: Question) -> str | None:
    """The stem names something to ask about, and no text holds template or schema debris ("{topic}", "field:")."""
    named = [w for w in content_words(q.stem).values() if w not in GENERIC]
    if not named:
        return f"the stem {q.stem!r} names nothing specific to ask about: say which concept and what about it"
    for name, text in [("the stem", q.stem), *((f"option {x}", o) for x, o in zip(LETTERS, q.options, strict=False))]:
        match = SCHEMA_DEBRIS.search(text)
        if match:
            return f"{name} holds template or schema text ({match.group(0).strip()!r}): write plain words"
    return None


def implausible_distractors(q: Question) -> str | None:
    """Every wrong option is the same kind of answer as the key: no debris, no word among numbers or number among words.

    Debris is markup, code or schema text ("}, {", "difficulty:medium,", "./notes.csv") beside a key that has none,
    or an option with no letter or digit. Embedding similarity was measured for this rule and rejected: wordllama is
    a static model, and on short options its similarities are noise ("ReLU" vs "Sigmoid" -0.13, "Dropout" vs
    "Batch normalization" 0.06, yet "Chocolate cake" 0.13 to a gradient-descent item). Similarity to the key below
    0.15 flags 59% of ARC-Challenge and 85% of OpenBookQA expert-written questions; no cut-off separates real
    distractors from ones swapped in from other questions without flagging many real ones.
    """
    key = q.correct_option.strip()
    for letter, option in _distractors(q):
        if not re.search(r"[A-Za-z0-9]", option) or (MARKUP.search(option) and not MARKUP.search(key)):
            return f"option {letter} ({option!r}) is not an answer a student could believe: write a real one"
        # A bare number among words with no digit (or a word among bare numbers): "1 day" beside "millions of years" is
        # the same kind of answer, "0.5" beside "Dropout" is not.
        if (BARE_NUMBER.match(option.strip()) and not re.search(r"\d", key)) or (
            BARE_NUMBER.match(key) and not re.search(r"\d", option)
        ):
            return f"option {letter} ({option!r}) is not the same kind of answer as the others: make every option one"
    return None


def none_of_the_above(q: Question) -> str | None:
    """No "none of the above" option (it measures spotting wrong answers, not knowing the right one)."""
    found = [letter for letter, option in zip(LETTERS, q.options, strict=False) if NONE_ABOVE.search(normalise(option))]
    return f"'none of the above' as {_options(found)}: write a real answer instead" if found else None


def longest_option_correct(q: Question) -> str | None:
    """The key is not longer than the longest wrong option by more than 20% (and 4 characters)."""
    key = len(q.correct_option.strip())
    longest = max(len(option.strip()) for _, option in _distractors(q))
    if key > longest * (1 + KEY_LONGER_BY) and key - longest >= KEY_LONGER_MIN:
        more = f"{key / longest - 1:.0%} longer" if longest else "the only non-empty option"
        return (
            f"the correct option has {key} characters, {more} than the longest wrong one ({longest}): "
            "a test-wise student picks the longest; shorten it or make the wrong options as detailed"
        )
    return None


def true_false_question(q: Question) -> str | None:
    """Not a true/false item in disguise: no True/False/Yes/No options, no "which statement is true?"."""
    tf = [
        letter for letter, option in zip(LETTERS, q.options, strict=False) if TRUE_FALSE_OPTION.match(normalise(option))
    ]
    if tf:
        return f"a bare true/false answer as {_options(tf)}: ask a question with four real answers"
    if TRUE_FALSE_STEM.search(normalise(q.stem)):
        return "the stem asks which statement is true or false (four true/false items in one): ask one focused question"
    return None


def convergence_cues(q: Question) -> str | None:
    """The key is not the option whose words recur most in the other options (the one the others converge on)."""
    words = [set(content_words(option)) for option in q.options]
    frame = set.intersection(*words) if words else set()  # words every option has say nothing about which is right
    words = [w - frame for w in words]

    def recurrence(i: int) -> float:  # how many other options hold each of option i's words, on average
        others = [words[j] for j in range(len(words)) if j != i]
        return sum(sum(w in o for o in others) for w in words[i]) / len(words[i]) if words[i] else 0.0

    scores = [recurrence(i) for i in range(len(words))]
    key = LETTERS.index(q.answer)
    if scores[key] >= CONVERGENCE_MIN and all(scores[key] > s for i, s in enumerate(scores) if i != key):
        return (
            "the correct option is the one whose words the other options share most: a test-wise student picks "
            "the common core; vary the wrong options instead of building them from the key's parts"
        )
    return None


def all_of_the_above(q: Question) -> str | None:
    """No "all of the above" option (partial knowledge is enough to pick it)."""
    found = [letter for letter, option in zip(LETTERS, q.options, strict=False) if ALL_ABOVE.search(normalise(option))]
    return f"'all of the above' as {_options(found)}: write a real answer instead" if found else None


def fill_in_the_blank(q: Question) -> str | None:
    """A blank, if any, ends the stem; none in its middle or at its start."""
    for match in BLANK.finditer(q.stem):
        if q.stem[match.end() :].strip(" .?:!\"'"):
            return "the stem leaves a blank before its end: ask a direct question, or move the blank to the end"
    return None


def absolute_terms(q: Question) -> str | None:
    """No wrong option says always/never/all/none/only...: students learn such options are almost always false."""
    for letter, option in _distractors(q):
        text = normalise(option)
        match = ABSOLUTE.search(text)
        if match and not (ALL_ABOVE.search(text) or NONE_ABOVE.search(text)):
            return f"option {letter} uses the absolute term {match.group(0)!r}, which marks it as wrong: drop it"
    return None


def word_repeats(q: Question) -> str | None:
    """No content word of the key appears in the stem unless a wrong option has it too (else it points at the key)."""
    stem = content_words(q.stem)
    wrong = set().union(*(content_words(option) for _, option in _distractors(q)))
    key = content_words(q.correct_option)
    shared = [w for folded, w in key.items() if folded in stem and folded not in wrong and not w.isdigit()]
    if shared:
        return (
            f"the stem and the correct option share {', '.join(repr(w) for w in shared)}, and no wrong option does: "
            "reword the stem or the key"
        )
    return None


def unfocused_stem(q: Question) -> str | None:
    """The stem asks a question (or sets a task, or is a statement to complete), not a finished sentence."""
    stem = q.stem.strip()
    if len(normalise(stem).split()) < 3:
        return f"the stem {stem!r} is a bare phrase: ask a question a student could answer before reading the options"
    if stem.endswith(("?", ":")) or not stem.endswith("."):  # a question, a lead-in, or an unfinished statement
        return None
    last_sentence = re.split(r"(?<=[.!?])\s+", stem)[-1]
    if BLANK.search(stem) or QUESTION_START.match(normalise(last_sentence)):
        return None
    return "the stem is a finished statement: a student cannot tell what is asked without the options; ask a question"


def complex_or_k_type(q: Question) -> str | None:
    """No option combines others ("A and B", "Both", "I and III")."""
    found = [letter for letter, option in zip(LETTERS, q.options, strict=False) if K_TYPE.search(normalise(option))]
    if found:
        return f"a combination of other options as {_options(found)}: ask for one best answer"
    return None


def _an_sound(word: str) -> bool:
    # Whether "an" goes before this word: vowel letters, except the "you"/"wun" sounds; acronyms read letter by letter.
    if not word:
        return False
    if word[0].isdigit():
        return word.startswith(("8", "11", "18"))
    if len(word) == 1 or word.isupper():
        return word[0].upper() in "AEFHILMNORSX"
    lower = word.lower()
    if lower.startswith(("uni", "use", "usu", "uti", "ure", "eu", "ewe", "one", "once", "ubiq")):
        return False
    return lower.startswith(("hour", "honest", "honor", "honour", "heir")) or lower[0] in "aeiou"


def grammatical_cues(q: Question) -> str | None:
    """Every option fits the end of the stem: "a"/"an" before it, singular after "are"/"were"."""
    words = re.findall(r"[A-Za-z']+", BLANK.sub(" ", q.stem))
    last = words[-1].lower() if words else ""
    misfits = []
    for letter, option in zip(LETTERS, q.options, strict=False):
        first = (re.findall(r"[A-Za-z0-9']+", option) or [""])[0]
        if first.lower() in ("a", "an", "the"):
            if last in ("are", "were") and first.lower() in ("a", "an"):
                misfits.append(letter)  # "... are" then "a/an ...": a plural verb before a singular answer
            continue
        if last in ("a", "an") and _an_sound(first) != (last == "an"):
            misfits.append(letter)
    if misfits:
        return (
            f"the stem's last word {last!r} does not fit {_options(misfits)} grammatically, so the options that fit "
            "stand out: end the stem before the article (or verb), or make every option agree"
        )
    return None


def lost_sequence(q: Question) -> str | None:
    """Numeric options are in ascending or descending order."""
    values = []
    for option in q.options:
        match = NUMBER.match(option.strip().lower())
        if not match:
            return None
        values.append(float(match.group(1).replace(",", "")))
    if values not in (sorted(values), sorted(values, reverse=True)):
        return "the numeric options are out of order: list them from smallest to largest"
    return None


def vague_terms(q: Question) -> str | None:
    """No option hedges with usually/sometimes/may...: readers disagree on what they mean."""
    for letter, option in zip(LETTERS, q.options, strict=False):
        match = VAGUE.search(normalise(option))
        if match and option.strip(" .") != "May":  # the month
            return f"option {letter} uses the vague term {match.group(0)!r}: say exactly when or how much"
    return None


def more_than_one_correct(q: Question) -> str | None:
    """No wrong option says the key again or contains it whole (then it is right too)."""

    def phrase(text: str) -> str:  # normalise() but keeping case: "Cc or cc" is not inside "CC or Cc"
        return " ".join(text.translate(str.maketrans(string.punctuation, " " * len(string.punctuation))).split())

    key = phrase(q.correct_option)
    for letter, option in _distractors(q):
        if key and f" {key} " in f" {phrase(option)} ":
            return f"option {letter} contains the whole correct answer, so it is also right: make it plainly wrong"
    return None


def negative_worded_stem(q: Question) -> str | None:
    """A negative in the stem (not, except, least...) is marked in CAPITALS or bold, so no student misses it."""
    marked = BOLD.sub(lambda m: next(g for g in m.groups() if g).upper(), q.stem)
    for match in NEGATIVE.finditer(marked):
        if not match.group(0).isupper():
            return (
                f"the stem's negative {match.group(0)!r} is easy to miss: ask positively, "
                f"or write it as {match.group(0).upper()!r}"
            )
    return None


RUBRIC: tuple[tuple[str, Check], ...] = (
    ("ambiguous or unclear information", ambiguous_or_unclear),
    ("implausible distractors", implausible_distractors),
    ("none of the above", none_of_the_above),
    ("longest option correct", longest_option_correct),
    ("true/false question", true_false_question),
    ("convergence cues", convergence_cues),
    ("all of the above", all_of_the_above),
    ("fill-in-the-blank", fill_in_the_blank),
    ("absolute terms", absolute_terms),
    ("word repeats", word_repeats),
    ("unfocused stem", unfocused_stem),
    ("complex or K-type", complex_or_k_type),
    ("grammatical cues", grammatical_cues),
    ("lost sequence", lost_sequence),
    ("vague terms", vague_terms),
    ("more than one correct", more_than_one_correct),
    ("negative worded stem", negative_worded_stem),
)
ACCEPTABLE_FLAWS = 1  # an item with at most this many flaws is acceptable (as SAQUET and Moore et al. count)


def flaws(q: Question) -> list[Flaw]:
    """Every rubric flaw found in ``q``, in rubric order (a malformed question is one flaw per rule it breaks)."""
    found = []
    for name, rule in RUBRIC:
        reason = safe(rule, q)
        if reason:
            found.append(Flaw(name, reason))
    return found


def is_acceptable(q: Question) -> bool:
    """At most one item-writing flaw."""
    return len(flaws(q)) <= ACCEPTABLE_FLAWS


def near_duplicates(stems: Sequence[str], threshold: float = NEAR_DUPLICATE_EMBEDDING) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, similarity)``, ``i < j``, of stems that ask the same thing by meaning, most similar first.

    Similarity is the cosine of wordllama embeddings of the stems' content words, so a reworded stem is caught
    where character matching misses it. The default, 0.85, was read off real pairs: it catches 13 of 24
    hand-written paraphrases of machine-learning stems ("What does a confusion matrix show?" / "What information
    is shown by a confusion matrix?") and flags 1 of 16 different questions on the same topic; on real
    questions it flags 10 of 124,750 OpenBookQA pairs (nearly all true repeats, such as "What do tuna eat?" /
    "Tuna primarily eat"), 1 of 44,551 ARC pairs and none of TruthfulQA's. Static embeddings cannot tell
    "What does L1 regularization add to the loss?" from the same question about L2 (0.95): a pair that differs
    in one such token is reported, and a person or a stricter check decides.
    """
    import numpy as np

    from quizgen.embed import embed

    if len(stems) < 2:
        return []
    # Content words only: "What is X?" and "What does X mean?" differ mostly in words that say nothing.
    vectors = embed([" ".join(content_words(stem).values()) for stem in stems])
    similar = vectors @ vectors.T
    rows, cols = np.triu_indices(len(stems), k=1)
    pairs = [
        (int(i), int(j), float(similar[i, j])) for i, j in zip(rows, cols, strict=True) if similar[i, j] >= threshold
    ]
    return sorted(pairs, key=lambda pair: -pair[2])
