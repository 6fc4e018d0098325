"""Grounded quizzes: every key, explanation and distractor is a string of the course, and says where it is from.

A 135M model knows little machine learning and copies what its prompt shows it, so it is not asked to
write questions. The course writes them: :mod:`quizgen.glossary` reads the terms the course defines,
and a question is built by rule from one course sentence, answer first.

* **term from its definition**: "Dropout is a regularization technique that randomly sets ... ." becomes
  "Which regularization technique randomly sets ...?"; the key is the term, the distractors are the
  nearest other terms the course defines (of the same kind where there are enough), never one that
  the source sentence names.
* **definition of a term**: "What is dropout?"; the options are what the course says dropout and three
  neighbouring terms are, each a string of the course.
* **a fact about a term**: a sentence whose subject is a defined term ("Momentum adds ... .") becomes
  "Which technique adds ...?".

The explanation is the source sentence, verbatim; the reason each wrong option is wrong is that
option's own definition, from its own passage. Every string carries a :class:`~quizgen.schema.Source`.

A candidate with two or more item-writing flaws (:func:`quizgen.flaws.flaws`: unacceptable by the rubric) is passed
over like one that fails a check. The model then reads: **open-book verification** scores each option as the answer
to the question with the source passage in front of it (log-likelihood, as lm-evaluation-harness scores multiple
choice) and must prefer the key; a distractor the passage also supports fails the question. The
model's **blind answer** (no passage) is kept as a difficulty signal only. A question that fails a
check or the verification is replaced by the next candidate; the quiz is only as long as the course
material allows, and says so.
"""

from __future__ import annotations

import contextvars
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from quizgen import checks, flaws
from quizgen.glossary import Definition, Glossary, Sentence, mentions, quiz_prose, quiz_sentences
from quizgen.glossary_words import LEANS_ON_BEFORE
from quizgen.request import QuizRequest
from quizgen.schema import LETTERS, STEM_MAX, VERIFY_PREFIX, Question, Quiz, QuizItem, QuizMetadata, Source
from tutor.errors import InputError

SEARCH_K = 8  # passages retrieved per topic
# A passage a quiz draws on names every content word of its topic, or most of them (as written: "measure" is not
# "measuring") and scores at least this fraction of the best hit's BM25: a topic whose own section holds no sentence
# the glossary reads gives a short quiz, not one on the next page (on "Type I and Type II errors" the section scored
# 13.8 and the calibration page that filled the quiz 1.05).
RELEVANT_BM25 = 0.3
VERIFY_CONTEXT_CHARS = 900  # at most this much course text is read by the open-book verification
VERIFY_AROUND = 1  # sentences of the source passage read on each side of the source sentence
DISTRACTOR_POOL = 8  # nearest terms considered for the three distractors
LONGEST_RATIO = 1.2  # the item-writing-flaw rubric's "longest option correct" threshold
EASY_OFFSET = 3  # an easy question skips the nearest terms: its distractors are further from the key
BLIND_KEY = "blind"  # QuizItem issues never carry the blind answer: it lives in the metadata

# Why candidates are passed over (too few distractors, a check, the open-book verification), at DEBUG: how a short
# quiz on someone's notes is diagnosed (`logging.basicConfig(level=logging.DEBUG)`).
log = logging.getLogger(__name__)


class NotCoveredError(InputError):
    """The knowledge base has nothing on the topic: the message says how to add notes (a user-fixable error)."""


@dataclass(frozen=True)
class Candidate:
    """A question before options are placed: the stem, the key, and what it was built from."""

    form: str  # "term" | "definition" | "fact"
    stem: str
    key: str  # the correct option's text
    definition: Definition  # the key term's definition (its kind picks the distractors)
    sentence: Sentence  # the source sentence: the explanation, verbatim
    objective: str
    bloom: str


def cap(text: str) -> str:
    """First letter upper case (an option reads as a sentence start); the rest as the course wrote it.

    A coined name keeps its case ("fastText", "word2vec", "iPhone"): its first word has a capital or a digit
    after its first letter, and "FastText" would be a name the course never wrote.
    """
    first = text.split(" ", 1)[0]
    if re.search(r"^[a-z]+(?:[A-Z]|\d)", first):
        return text
    return text[:1].upper() + text[1:] if text else text


def term_stem(d: Definition) -> str | None:
    """The stem asking for the term that ``d`` defines, without naming it."""
    if d.passing or not d.predicate:
        return None
    if re.search(r"\. [a-z]|: [A-Z0-9]", d.predicate):
        return None  # "... three things: the initial distribution. the transition ...": a list ran into the sentence
    found = re.search(r"^(?:The |A |An )?.+? (is|are|refers to|refer to|means|denotes) ", d.sentence.text)
    verb = d.verb or (found.group(1) if found else "")  # "Stride: the number ..." links by "is" without saying it
    if d.described:  # "Denoising autoencoder: the input is corrupted with noise and ...": what the notes say of it
        stem = f'Which term do the notes describe as "{d.predicate}"?'
    elif d.naming and re.match(r"(?:this|these|such)\b", d.predicate):
        # "This tension is called X" after the sentence that says what the tension is: blank X in both sentences.
        blanked = d.sentence.text
        for name in sorted(d.names, key=len, reverse=True):
            blanked = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "___", blanked, flags=re.IGNORECASE)
        if blanked.count("___") != 1:
            return None
        stem = f'Which term fills the blank in "{blanked}"?'
    elif d.naming:
        stem = f"What is {d.predicate} called?"
    elif d.relative and d.relative == d.predicate:  # "X, also called Y, prevents ...": no copula, no kind
        stem = f"Which term {d.predicate}?"
    elif verb in ("refers to", "refer to", "means", "denotes"):
        stem = f"Which term {verb} {d.predicate}?"
    elif d.relative and verb == "is":
        phrase = d.predicate.split(" ", 1)[1]
        phrase = phrase[: phrase.rfind(" " + d.relative)]
        phrase = re.sub(r",? (?:that|which|who)$", "", phrase)
        if len(phrase.split()) > 8:
            return None
        stem = f"Which {phrase} {d.relative}?"
    else:
        stem = f"What is the name for {d.predicate}?"
    return stem if len(stem) <= STEM_MAX else None


def definition_stem(d: Definition) -> str | None:
    """The stem asking what the term is; its options are definitions."""
    if d.naming or d.passing or d.described or not d.predicate or mentions(d.predicate, d.names):
        return None
    if d.predicate.split()[0].lower() not in ("a", "an", "the"):
        return None
    plural = d.plural
    article = d.article.lower() + " " if d.article else ""
    # A term the sentence writes after its start keeps its case ("A Markov chain is ..."); one opening it may not.
    term = d.term if d.article or not d.sentence.text.startswith(d.term) else _lower_first(d.term)
    return f"What {'are' if plural else 'is'} {article}{term}?"


def fact_stem(sentence: Sentence, d: Definition) -> str | None:
    """For a sentence whose subject is the term ``d`` ("Momentum adds ..."), the stem "Which technique adds ...?"."""
    for name in sorted((d.term, *d.aliases), key=len, reverse=True):
        match = re.match(rf"^(?:The |A |An )?(?i:{re.escape(name)}) ([a-z]+) (.+)$", sentence.text.rstrip(".!"))
        if not match:
            continue
        verb, rest = match.groups()
        modal = ("can", "will", "may", "could", "would", "should", "might", "must")
        if verb in ("are", "were", "have", "do") or not (verb.endswith("s") or verb in modal):
            return None  # a plural subject or no verb: "Which technique" would not agree
        if rest.split(" ", 1)[0] in ("is", "are", "was", "were", "can", "has", "have", "will", "may"):
            return None  # "Momentum terms are ...": the word after the term was a noun, not the verb
        if re.search(r": [A-Z0-9]|\. [a-z]", rest):
            return None  # "... and they interact: Number of trees", "... three things: the first. the second": a list
        if LEANS_ON_BEFORE.search(rest):
            return None  # "Median imputation uses the median instead": instead of what the sentence before says
        noun = d.head if d.head and not mentions(d.head, d.names) else "term"
        stem = f"Which {noun} {verb} {rest}?"
        return stem if len(stem) <= STEM_MAX and not mentions(stem, d.names) else None
    return None


def named_as(d: Definition, text: str) -> str:
    """The name of ``d`` that ``text`` uses, so that a key is the source's own word; the term when it uses none.

    A sentence about the variational autoencoder that says "VAE" is keyed "VAE".
    """
    for name in sorted((d.term, *d.aliases), key=len, reverse=True):
        found = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE)
        if found:
            return name if name.lower() == found.group(0).lower() and name[:1].isupper() else found.group(0)
    return d.term


def _lower_first(text: str) -> str:
    """A term as it reads mid-sentence: "Linear Regression" -> "linear regression"; "SGD", "F1", "Q-learning" kept."""
    return " ".join(
        w if any(c.isupper() or c.isdigit() for c in w[1:]) or re.match(r"[A-Z]-", w) else w.lower()  # "Q-learning"
        for w in text.split()
    )


def candidates(glossary: Glossary, passages: Sequence[Any]) -> list[Candidate]:
    """Every question the passages support, most relevant passage first, one form per fact first.

    Each defining sentence gives a "term" or a "definition" question (alternating, so a quiz does not
    ask the same fact twice), each sentence about a defined term a "fact" question; the other form of
    each definition comes last, for quizzes that need more questions than the passages hold facts.
    """
    first: list[Candidate] = []
    blanks: list[Candidate] = []
    spare: list[Candidate] = []
    seen: set[str] = set()
    for passage in passages:
        for sentence in quiz_sentences(passage):
            if sentence.text in seen or not quiz_prose(sentence.text):
                continue
            seen.add(sentence.text)
            d = glossary.defined_by(sentence)
            if d is not None:
                made = [
                    _candidate("term", term_stem(d), cap(d.term), d, f"Identify {d.term} from its definition"),
                    _candidate("definition", definition_stem(d), cap(d.predicate), d, f"Recall what {d.term} is"),
                ]
                made = [c for c in made if c is not None]
                if len(first) % 2 and len(made) == 2:
                    made.reverse()
                first.extend(made[:1])
                spare.extend(made[1:])
                continue
            fact = next(((d, stem) for d in glossary.items if (stem := fact_stem(sentence, d))), None)
            if fact is not None:
                d, stem = fact
                key = cap(named_as(d, sentence.text))
                first.append(Candidate("fact", stem, key, d, sentence, f"Recall a fact about {d.term}", "remember"))
                continue
            cloze = cloze_candidate(glossary, sentence)
            if cloze is not None:
                blanks.append(cloze)
    return first + blanks + spare


# A sentence that opens with one of these leans on the one before it: out of context it cannot be a question.
DEPENDENT_OPENERS = re.compile(
    r"^(?:this|these|that|those|it|its|they|their|our|we|here|so|now|notice|note|then|thus|also|however|instead|"
    r"given|similarly|likewise|in the (?:above|below|previous|next|following)|to do this|as (?:shown|before|above)|"
    r"below|above|the (?:following|above|below|previous|next))\b",
    re.IGNORECASE,
)
CLOZE_MIN_WORDS = 8


def cloze_candidate(glossary: Glossary, sentence: Sentence) -> Candidate | None:
    """A fill-in-the-blank question on a self-contained sentence that names a course term (the longest it names)."""
    if DEPENDENT_OPENERS.match(sentence.text) or len(sentence.text.split()) < CLOZE_MIN_WORDS:
        return None
    if LEANS_ON_BEFORE.search(sentence.text):
        return None  # "___ goes one step further: ...": further than what the sentence before says
    # A term's own defining sentence is its term question already; a term only named there in passing is fair game.
    named = [
        d
        for d in glossary.items
        if mentions(sentence.text, d.names) and (d.passing or d.sentence.text != sentence.text)
    ]
    passed: list[str] = []
    for d in sorted(named, key=lambda d: -max(len(n) for n in d.names)):  # the longest name first
        if any(mentions(longer, d.names) for longer in passed):
            continue  # "gradient ___" when "gradient boosting" was passed over: half a name is no question
        passed.extend(d.names)  # "Variational ___ (VAE)": an alias is a name too
        blanked = sentence.text
        for name in sorted(d.names, key=len, reverse=True):
            blanked = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "___", blanked, flags=re.IGNORECASE)
        if blanked.count("___") != 1 or re.search(r"\([^)]*___", blanked):
            continue  # two blanks read as a riddle; a blank in brackets asks for an aside
        if set(flaws.content_words(blanked)) & set(flaws.content_words(d.term)):
            continue  # "At inference the ___ replace the batch statistics": "statistics" points at the key
        stem = f'Which term fills the blank in "{blanked}"?'
        if len(stem) <= STEM_MAX:
            key = cap(named_as(d, sentence.text))
            return Candidate("cloze", stem, key, d, sentence, f"Recognise {d.term} in context", "remember")
    return None


def _candidate(form: str, stem: str | None, key: str, d: Definition, objective: str) -> Candidate | None:
    if not stem or (mentions(stem, d.names) and form != "definition"):
        return None
    bloom = "remember" if form == "term" else "understand"
    return Candidate(form, stem, key, d, d.sentence, objective, bloom)


def source_of(sentence: Sentence, kb: str) -> Source:
    """The Source record of a course sentence."""
    p = sentence.passage
    return Source(
        kb=kb, doc=p.doc, headings=tuple(p.headings), start=sentence.start, end=sentence.end, quote=sentence.text
    )


def distractors(glossary: Glossary, c: Candidate, difficulty: str) -> list[Definition]:
    """Three wrong options' definitions: the nearest terms of the key's kind that fit the question's form.

    A "definition" question needs definitions that read like the key (an article and a noun phrase)
    and are about as long (the key must not stand out as the longest); a term question needs terms
    that the source sentence does not name.
    """
    ranked = glossary.neighbours(c.definition, exclude_text=c.sentence.text + " " + c.stem)
    if c.form == "definition":
        ranked = [
            (d, s)
            for d, s in ranked
            if definition_stem(d) is not None and not mentions(d.predicate, c.definition.names)
        ]
    elif c.definition.head and c.stem.startswith("Which ") and not c.stem.startswith("Which term"):
        # The stem names the key's kind ("Which hyperparameter ..."): options of another kind give it away.
        same = [(d, s) for d, s in ranked if d.head == c.definition.head]
        if len(same) >= 3:
            ranked = same
    offset = EASY_OFFSET if difficulty == "easy" and len(ranked) >= EASY_OFFSET + 3 else 0
    pool = [d for d, _ in ranked[offset : offset + DISTRACTOR_POOL]]
    if c.form == "definition":  # keep the three whose length is closest to the key's, its own document's first
        doc = c.definition.sentence.passage.doc

        def fit(d: Definition) -> tuple[bool, bool, int]:
            gap = abs(len(d.predicate) - len(c.key))
            # The neighbours' own-document bonus is lost in a sort by length: among definitions of about the key's
            # length, one from the key's page comes first ("What is a missing indicator?" with a p-value's
            # definition is answered by its topic alone).
            return gap > len(c.key) // 2, d.sentence.passage.doc != doc, gap

        pool.sort(key=fit)
        if pool and not any(d.sentence.passage.doc == doc for d in pool[:3]):
            return []  # "What is the Brier score?" among three other pages' definitions: the topic alone answers it
        # A definition that says "only" or "sometimes" reads as the wrong option (item-writing flaws): others first.
        plain = [d for d in pool if not (flaws.ABSOLUTE.search(d.predicate) or flaws.VAGUE.search(d.predicate))]
        if len(plain) >= 3:
            pool = plain
        return pool[:3]
    chosen, spare = pool[:3], pool[3:]
    # The key must not be the longest option by more than a fifth (a test-wise student picks the longest): swap the
    # shortest wrong term for the longest spare one while that is so.
    while chosen and spare and len(c.key) > LONGEST_RATIO * max(len(cap(d.term)) for d in chosen):
        longest = max(spare, key=lambda d: len(d.term))
        shortest = min(chosen, key=lambda d: len(d.term))
        if len(longest.term) <= len(shortest.term):
            break
        chosen[chosen.index(shortest)] = longest
        spare.remove(longest)
    # The key must not be the option the others converge on ("Q-learning" among "Deep Q-network", "Reinforcement
    # learning", ...): swap the wrong term sharing most of the key's words for a spare one sharing none.
    key_words = set(flaws.content_words(c.key))
    for _ in range(len(chosen)):
        probe = SimpleNamespace(options=[c.key, *(cap(d.term) for d in chosen)], answer=LETTERS[0])
        fresh = [d for d in spare if not key_words & set(flaws.content_words(d.term))]
        if not flaws.convergence_cues(probe) or not fresh:
            break
        worst = max(chosen, key=lambda d: len(key_words & set(flaws.content_words(d.term))))
        chosen[chosen.index(worst)] = fresh[0]
        spare.remove(fresh[0])
    return chosen


def build_question(c: Candidate, wrong: Sequence[Definition], letter: str, kb: str, difficulty: str) -> Question:
    """The finished question: the key at ``letter``, each wrong option with its own definition as the reason."""
    texts = [cap(d.predicate) if c.form == "definition" else cap(d.term) for d in wrong]
    slots = [x for x in LETTERS if x != letter]
    options = dict(zip(slots, texts, strict=True))
    options[letter] = c.key
    return Question(
        stem=c.stem,
        options=[options[x] for x in LETTERS],
        answer=letter,
        explanation=c.sentence.text,
        wrong_reasons={slot: d.sentence.text for slot, d in zip(slots, wrong, strict=True)},
        difficulty=difficulty,
        bloom_level=c.bloom,
        objective=c.objective[:200],
        source=source_of(c.sentence, kb),
        reason_sources={slot: source_of(d.sentence, kb) for slot, d in zip(slots, wrong, strict=True)},
    )


def context_of(sentence: Sentence, around: int = VERIFY_AROUND) -> str:
    """The source sentence with up to ``around`` sentences of its passage on each side: what verification reads.

    The whole passage would cost its every token on each question (about 300 on a 2-core CPU: a second);
    the sentences next to the source are where a distractor the passage also supports would be named.
    """
    spans = quiz_sentences(sentence.passage)
    index = next((i for i, s in enumerate(spans) if s.start == sentence.start), 0)
    return " ".join(s.text for s in spans[max(0, index - around) : index + around + 1])[:VERIFY_CONTEXT_CHARS]


def verify_prompt(question: Question, passage: str) -> str:
    """The open-book prompt: the source passage, then the question (each option is scored as its answer)."""
    intro = "Read the course text, then answer the question."
    return f"{intro}\n\nCourse text: {passage}\n\nQuestion: {question.stem}\nAnswer:"


def _word_form(word: str) -> str:
    # A plural and its singular are one word here ("trees", "tree"); nothing else is folded.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _word_forms(text: str) -> set[str]:
    """The words of ``text`` a topic is matched against: plurals folded, a hyphenated word whole and in parts."""
    forms: set[str] = set()
    for token in re.findall(r"[\w'-]+", text.lower()):
        forms.update(_word_form(w) for w in (token, *token.split("-")) if w)
    return forms


# A grounded quiz is mostly prompt evaluation (the open-book check reads about 300 tokens a question), which a
# backend on this machine's CPU does not batch: four questions at once took 1.07-1.12x the time of one at a time on
# llama.cpp in session 8 (README, "A grounded quiz"), and the first question came later. A server batches prompts.
LOCAL_BACKENDS = frozenset({"llamacpp", "transformers", "fake"})


def default_width(model: Any) -> int:
    """How many questions the model checks at once when the request does not say: 1 on a local backend."""
    if getattr(model, "backend", "") in LOCAL_BACKENDS:
        return 1
    return max(1, int(getattr(model, "concurrency", 1) or 1))


def names_topic(topic: str, hits: Sequence[Any]) -> bool:
    """Whether every content word of ``topic`` stands in the passages found, as written (a plural aside).

    The search matches stems, which is right for a student's question but too loose for a quiz's subject: the
    stem of "tokenization" is "token", and a course that only says "each token attends to ..." would be quizzed
    on attention masks under the title "tokenization". A quiz is written only on what its notes name.
    A hyphenated word names each of its parts too ("the exploration-exploitation trade-off" names
    "exploration"), and a section's heading names what its passages are about.
    """
    return all(named_words(topic, hits).values())


def named_words(topic: str, hits: Sequence[Any]) -> dict[str, bool]:
    """Each content word of ``topic``, and whether the passages found write it (see :func:`names_topic`)."""
    from tutor.knowledge.search import content_terms

    words = set().union(*(_word_forms(" ".join((hit.passage.text, *hit.passage.headings))) for hit in hits))
    return {term: _word_form(term.lower()) in words for term in content_terms(topic)}


def on_topic(topic: str, hits: Sequence[Any]) -> list[Any]:
    """The hits a quiz on ``topic`` may draw on: those that name it, or most of it and score near the best.

    A passage that names one word of a two-word topic is about something else ("statistics such as correlations"
    under "test statistics", "calibration" under "measuring calibration").
    """
    best = max((h.bm25 for h in hits), default=0.0)
    named = [list(named_words(topic, [h]).values()) for h in hits]
    return [
        h
        for h, n in zip(hits, named, strict=True)
        if all(n) or (2 * sum(n) > len(n) and h.bm25 >= RELEVANT_BM25 * best)
    ]


def search_topic(kb: Any, topic: str) -> list[Any]:
    """The knowledge base's passages on ``topic``; :class:`NotCoveredError` when it has nothing on it."""
    from tutor.grounded import covers

    hits = kb.search(topic, k=SEARCH_K)
    if not covers(kb, topic, hits) or not names_topic(topic, hits):
        raise NotCoveredError(
            f"the knowledge base {kb.name!r} has nothing on {topic!r}. Add your notes with "
            "`ta kb add NAME FILES...` and quiz on them with `--kb NAME` (or `--source FILE`), or ask for an "
            "ungrounded quiz with `--ungrounded` (written by the model alone and marked ungrounded)"
        )
    return hits


class GroundedQuizAgent:
    """Writes quizzes from a knowledge base: ``GroundedQuizAgent(model).stream(QuizRequest("dropout"))``.

    The knowledge base is the request's ``kb`` (default: the shipped starter course), or a temporary one made
    of the request's ``source_text``, or the ``kb`` given here (which wins: ``ta quiz --source FILE`` indexes
    the file itself, so a PDF or reStructuredText keeps its headings).
    """

    def __init__(
        self, model: Any, kb: Any = None, verify: bool = True, blind: Callable[[str, Question], str] | None = None
    ) -> None:
        """Borrow ``model`` (any Model).

        Args:
            model: any Model.
            kb: a :class:`tutor.knowledge.KnowledgeBase` to use for every quiz.
            verify: False skips the open-book verification (for measurements).
            blind: ``blind(topic, question) -> letter``: the blind answer (default: the quiz agent's DSPy
                predictor, :meth:`quizgen.program.QuizAgent.blind_answer`; ``Model.choose`` when used alone).
        """
        self.model = model
        self.kb = kb
        self.verify_answers = verify
        self._blind = blind
        self._glossaries: dict[tuple[Any, ...], Glossary] = {}
        self._sources: dict[int, Any] = {}

    def with_blind(self, blind: Callable[[str, Question], str]) -> GroundedQuizAgent:
        """This agent (sharing its caches) with another blind answerer."""
        import copy

        new = copy.copy(self)
        new._blind = blind
        return new

    def knowledge(self, request: QuizRequest) -> Any:
        """The knowledge base a request is written from."""
        from tutor.knowledge import COURSE, open_kb

        if self.kb is not None:
            return self.kb
        if request.source_text:
            return self._source_kb(request.source_text)
        return open_kb(request.kb or COURSE)

    def glossary(self, kb: Any) -> Glossary:
        """The knowledge base's terms, read once per version of its passages."""
        passages = kb.passages()
        key = (str(kb.path), kb.name, len(passages), passages[-1].id if passages else 0)
        if key not in self._glossaries:
            self._glossaries[key] = Glossary.build(passages)
        return self._glossaries[key]

    def relevant_passages(self, kb: Any, topic: str) -> list[Any]:
        """The passages that cover ``topic``, best first; :class:`NotCoveredError` when there are none.

        A hit far below the best that does not name the topic is left out (see :data:`RELEVANT_BM25`): with too few
        questions on the topic itself the quiz is short and says so, rather than filled from other topics.
        """
        hits = on_topic(topic, search_topic(kb, topic))
        glossary = self.glossary(kb)
        defined = glossary.find(topic) or glossary.find(re.sub(r"^(the|a|an) ", "", topic.lower()))
        passages = [h.passage for h in hits]
        if defined is not None and defined.sentence.passage not in passages:
            passages.insert(0, defined.sentence.passage)
        return passages

    def stream(self, request: QuizRequest | str, **fields: Any) -> Iterator[QuizItem]:
        """Yield up to ``request.n`` checked, verified questions (fewer when the course holds fewer).

        Raises:
            NotCoveredError: now, not at the first ``next()``, when the knowledge base has nothing on the topic.
        """
        from quizgen.program import as_request

        request = as_request(request, **fields)
        kb = self.knowledge(request)
        passages = self.relevant_passages(kb, request.topic)
        return self._stream(request, kb, passages)

    def _stream(self, request: QuizRequest, kb: Any, passages: list[Any]) -> Iterator[QuizItem]:
        """Build and check questions in order; the model's part (verify, blind answer) for ``parallel`` at once.

        Up to ``parallel`` candidates that pass the checks are sent to the model together (threads: the llama.cpp
        backend decodes concurrent calls in one batch), and the verified ones are yielded in candidate order.
        With ``parallel`` 1 this is one candidate after another. A candidate is checked against the questions
        accepted and those already in its batch, so a batch never holds two near-duplicates.
        """
        rng = random.Random(request.seed)
        letters = [x for _ in range((request.n + 3) // 4) for x in rng.sample(LETTERS, 4)]
        glossary = self.glossary(kb)
        width = request.parallel or default_width(self.model)
        pending = _one_per_term_first(candidates(glossary, passages), request.topic)
        done: list[Question] = []
        asked: set[tuple[str, int]] = set()  # the source sentences of the questions yielded
        with ThreadPoolExecutor(max_workers=width) as pool:
            while len(done) < request.n:
                started = time.perf_counter()
                batch: list[tuple[Candidate, Question]] = []
                for c in pending:
                    source = (c.sentence.passage.doc, c.sentence.start)
                    if source in asked or any(source == (b.sentence.passage.doc, b.sentence.start) for b, _ in batch):
                        # "What is the Brier score?" beside "What is the name for the mean squared difference ...?":
                        # the other form of one sentence gives the first one's answer away.
                        log.debug("passed over (%s) %r: its sentence is asked already", c.form, c.stem)
                        continue
                    wrong = distractors(glossary, c, request.difficulty)
                    if len(wrong) < 3:
                        log.debug("passed over (%s) %r: %d distractors of 3", c.form, c.stem, len(wrong))
                        continue
                    slot = min(len(done) + len(batch), len(letters) - 1)
                    question = build_question(c, wrong, letters[slot], kb.name, request.difficulty)
                    issues = checks.check_question(question, done + [q for _, q in batch])
                    if issues:
                        log.debug("passed over (%s) %r: %s", c.form, c.stem, issues[0])
                        continue
                    found = flaws.flaws(question)
                    if len(found) > flaws.ACCEPTABLE_FLAWS:  # the rubric calls it unacceptable: the next one may not be
                        log.debug("passed over (%s) %r: %s", c.form, c.stem, "; ".join(f.rule for f in found))
                        continue
                    batch.append((c, question))
                    if len(batch) >= min(width, request.n - len(done)):
                        break
                if not batch:
                    return
                # Each worker runs in a copy of this thread's context, so DSPy settings made with
                # dspy.context(...) here (the blind answer is a DSPy predictor) hold there too.
                futures = [
                    pool.submit(contextvars.copy_context().run, self._model_part, request, c, q) for c, q in batch
                ]
                for (c, question), future in zip(batch, futures, strict=True):
                    item = future.result()
                    if item is None or len(done) >= request.n:
                        continue
                    item.seconds = round(time.perf_counter() - started, 2)
                    done.append(question)
                    asked.add((c.sentence.passage.doc, c.sentence.start))
                    yield item

    def _model_part(self, request: QuizRequest, c: Candidate, question: Question) -> QuizItem | None:
        """Open-book verification, then the blind answer: None when the model does not verify the question."""
        if self.verify_answers and (issues := self.verify(question, context_of(c.sentence))):
            log.debug("passed over (%s) %r: %s", c.form, c.stem, issues[0])
            return None
        blind = self.blind_answer(request.topic, question)
        return QuizItem(question=question, verified=self.verify_answers, attempts=1, issues=[], blind_answer=blind)

    def verify(self, question: Question, passage: str) -> list[str]:
        """Open-book: reading the source passage, the model must prefer the key; [] when it does, else the reason.

        This is the one model call of the grounded agent that does not go through DSPy: it scores each option's
        log-likelihood as a continuation of a raw (no chat template) prompt, normalised per token, and a DSPy LM
        answers with text only (lm15's Request has no way to ask for the probability of a given continuation).
        As a judgment (the option texts as an enum, like the blind answer) it would be scored in the chat
        format and unnormalised: a different check from the one measured in the README, so it stays as it is.
        """
        prompt = verify_prompt(question, passage)
        scores = self.model.loglikelihood([(prompt, " " + option) for option in question.options])
        lengths = [max(1, len(self.model.tokenize(" " + option))) for option in question.options]
        best = LETTERS[max(range(4), key=lambda i: scores[i] / lengths[i])]
        if best == question.answer:
            return []
        return [f"{VERIFY_PREFIX} reading the source, the model chose {best}, not the key {question.answer}"]

    def blind_answer(self, topic: str, question: Question) -> Any:
        """The letter the model picks without the passage (a difficulty signal, not a check)."""
        if self._blind is not None:
            return self._blind(topic, question)
        from quizgen.program import blind_prompt

        return self.model.choose([blind_prompt(topic, question)], list(LETTERS))[0].answer

    def run(self, request: QuizRequest | str, **fields: Any) -> Quiz:
        """A whole grounded quiz, with metadata on how it was made."""
        from quizgen.program import as_request

        request = as_request(request, **fields)
        started = time.perf_counter()
        items = list(self.stream(request))
        return self.assemble(request, items, seconds=time.perf_counter() - started)

    def assemble(self, request: QuizRequest, items: list[QuizItem], seconds: float = 0.0) -> Quiz:
        """A Quiz from streamed items, with metadata on how it was made (and how many the course supported)."""
        kb = self.kb.name if self.kb is not None else ("source" if request.source_text else request.kb or "course")
        metadata = QuizMetadata(
            model=self.model.name,
            seed=request.seed,
            temperature=0.0,
            difficulty=request.difficulty,
            seconds=round(seconds, 2),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 - readable
            source=request.source_text[:200] if request.source_text else None,
            extra={
                "requested": request.n,
                "grounded": True,
                "kb": kb,
                "verified": [item.verified for item in items],
                "blind_right": [item.blind_answer == item.question.answer for item in items],
                "backend": self.model.backend,
            },
        )
        return Quiz(topic=request.topic, questions=items, metadata=metadata)

    def _source_kb(self, text: str) -> Any:
        """A temporary knowledge base holding one document: the request's source text."""
        import tempfile
        from pathlib import Path

        from tutor.knowledge import KnowledgeBase

        key = hash(text)
        if key not in self._sources:
            folder = Path(tempfile.mkdtemp(prefix="ta-source-"))
            (folder / "notes.md").write_text(text, encoding="utf-8")
            kb = KnowledgeBase.create("source", path=folder / "source.db")
            kb.add([folder / "notes.md"])
            self._sources = {key: kb}  # one at a time: a new source replaces the last
        return self._sources[key]


def _one_per_term_first(pending: list[Candidate], topic: str = "") -> Iterator[Candidate]:
    """The candidates, each term's first question before any term's second; questions on the topic's own term first.

    A quiz on "the kernel trick" asks about the kernel trick before the kernels beside it: when the model does not
    verify one form of the topic's own definition, the other form is tried next, not after every other term.
    """
    from tutor.knowledge.search import content_terms

    asked = {_word_form(t) for t in content_terms(topic)}

    def names_it(c: Candidate) -> bool:
        return bool(asked) and any(asked <= _word_forms(name) for name in c.definition.names)

    own: list[Candidate] = []
    rest: list[Candidate] = []
    for c in pending:
        (own if names_it(c) else rest).append(c)
    yield from own
    later: list[Candidate] = []
    seen: set[str] = set()
    for c in rest:
        term = c.definition.term.lower()
        if term in seen:
            later.append(c)
        else:
            seen.add(term)
            yield c
    yield from later
