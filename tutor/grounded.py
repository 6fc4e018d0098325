"""The grounded tutor: retrieve course passages, answer from them, cite them; say so when the course is silent.

Two ways to answer, both from the passages a knowledge base returns for the question:

* **extractive** (the default, chosen by measurement: see README, "Grounded tutor"): the grammar lets the
  model only choose and order sentences of the retrieved passages (a regular expression that is an
  alternation of those sentences, one to three of them). Whatever the model does, every sentence it
  says is a sentence of the course: faithful by construction.
* **generative**: the passages go into the prompt and the model answers in its own words; its sources
  are listed, but nothing binds its words to them.

A question whose best passage does not reach the relevance floor gets :data:`NOT_IN_COURSE` instead of
an invented answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tutor.errors import InputError
from tutor.models.constraints import Regex

NOT_IN_COURSE = (
    "That is not in the course material I have. Try rephrasing with the course's terms, or add your notes "
    "(`ta kb add NAME FILES...`, or Add notes in the Quiz tab) and ask again."
)
MODES = ("extractive", "generative")
SEARCH_K = 3  # passages an answer reads
SENTENCE_CHOICES = 6  # sentences offered to the extractive grammar, most relevant first
# How offered sentences are ranked (:func:`score_parts`): the cosine of sentence and question, plus these bonuses.
# DEFINES, SUBJECT and PASSAGE were chosen on the even-numbered half of tests/data/tutor_eval.jsonl and checked on the
# odd half; COVERS, FORM and OPENS (halved) on the three development sets together (course, tests/data/notes_extra,
# the shared real pages), round values where the sum was flat, then checked once on tests/data/notes_extra3 (README,
# "Grounded tutor").
DEFINES_WEIGHT = 0.4  # the sentence defines a term the question names ("What is X?" -> "X is a ... that ...")
DEFINES_SHARE = 0.5  # ... in full for a "what" question or when the term carries this share of the question's weight
SUBJECT_WEIGHT = 0.2  # the question's rarer words open the sentence (what it is about), as a share of their weight
COVERS_WEIGHT = 0.2  # ... and are in the sentence at all, as a share of their weight
FORM_WEIGHT = 0.1  # the sentence has the form that answers the question's kind (a reason for "why", ...)
PASSAGE_WEIGHT = 0.05  # taken off per place the sentence's passage stands below the best one
OPENS_WEIGHT = 0.05  # the sentence opens its passage (course sections lead with their point)
ADD_SHARE = 0.5  # a sentence of another section than the best one's is offered with this share of the weight or more
SUBJECT_WORDS = 4
MAX_SENTENCES = 3  # an extractive answer says at most this many
MIN_DENSE = 0.25  # a question with words the course lacks and a best passage below this is not covered
MISSING_SHARE = 0.5  # ... nor one of whose content words the course lacks at least this share
# Words that frame a question rather than name its subject ("Why is mean imputation a problem?", "What are the
# drawbacks of ...?"): notes rarely use them, and counted as missing they refused covered questions.
FRAME_WORDS = frozenset(
    """problem problems issue issues drawback drawbacks downside downsides disadvantage disadvantages advantage
    advantages benefit benefits limitation limitations pros cons wrong purpose goal role point example examples
    reason reasons""".split()
)
GENERATIVE_MAX_TOKENS = 200
EXTRACTIVE_MAX_TOKENS = 480  # three offered pieces, some of two sentences (a cut-off answer is redone)
HISTORY_MESSAGES = 4  # the last two exchanges: the course text already fills most of a 2k-token context
PROMPT_PASSAGE_CHARS = 900  # each passage in the prompt, at most (a 135M model reads little well)
SYSTEM = (
    "You are a teaching assistant for a machine-learning course. Answer the student's question using only "
    "the course text below. Be brief (two or three sentences)."
)
GENERATIVE_SOURCES = "Read from (the answer is the model's own words, not checked against these):"
_REGEX_META = set("\\.^$|?*+()[]{}-/&~#\"'")


@dataclass(frozen=True)
class Answer:
    """A tutor answer and the course passages it rests on."""

    text: str
    sources: list[str] = field(default_factory=list)  # "doc › heading" citations, best first
    grounded: bool = True  # False when the course material had nothing to say (text is NOT_IN_COURSE)
    mode: str = "extractive"

    def render(self) -> str:
        """The answer with its sources, as `ta ask` and the page show it."""
        return self.text + self.sources_text()

    def sources_text(self) -> str:
        """The citations under the answer ("" without any).

        A generative answer is the model's own words, which nothing binds to the passages it read: its citations
        say so, so that a student does not take an invented sentence for the course's.
        """
        if not self.sources:
            return ""
        head = "Sources:" if self.mode == "extractive" else GENERATIVE_SOURCES
        return f"\n\n{head}\n" + "\n".join(f"- {s}" for s in self.sources)


def literal(text: str) -> str:
    """``text`` as a regular expression matching exactly it (portable across regex engines)."""
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


def sentence_regex(sentences: Sequence[str], most: int = MAX_SENTENCES, lead: str | None = None) -> Regex:
    """A grammar whose only outputs are one to ``most`` of ``sentences``, space-separated, in any order.

    With ``lead``, the answer opens with that sentence and the model chooses and orders at most ``most - 1``
    of the others after it.
    """
    rest = [s for s in sentences if s != lead]
    one = "(?:" + "|".join(literal(s) for s in rest) + ")"
    if lead is None:
        return Regex(f"{one}(?: {one}){{0,{most - 1}}}")
    if not rest:
        return Regex(literal(lead))
    return Regex(f"{literal(lead)}(?: {one}){{0,{most - 1}}}")


def split_answer(text: str, sentences: Sequence[str]) -> list[str]:
    """The sentences an extractive answer is made of, in its order (longest match first at each point)."""
    by_length = sorted(set(sentences), key=len, reverse=True)
    out, rest = [], text.strip()
    while rest:
        match = next((s for s in by_length if rest.startswith(s)), None)
        if match is None:
            raise ValueError(f"not made of the offered sentences: {rest[:60]!r}")
        out.append(match)
        rest = rest[len(match) :].lstrip()
    return out


@dataclass(frozen=True)
class Candidate:
    """A course sentence the extractive answer may say, with where it stands in the search results."""

    sentence: Any  # quizgen.glossary.Sentence
    cite: str  # "doc › heading"
    passage_rank: int  # 0 for the best passage
    opens: bool = False  # the first sentence of its passage
    text: str | None = None  # what is offered when not the sentence alone: the sentence before it, then it


def rank(question: str, pool: Sequence[Candidate]) -> list[Candidate]:
    """``pool`` ordered by the sum of :func:`score_parts`, best first."""
    scores = [sum(p.values()) for p in score_parts(question, pool)]
    return [pool[i] for i in sorted(range(len(pool)), key=lambda i: -scores[i])]


def score_parts(question: str, pool: Sequence[Candidate]) -> list[dict[str, float]]:
    """For each sentence of ``pool``, what each sign of answering ``question`` adds to its score (:func:`rank`).

    The embedding cosine alone favours sentences that share the question's topic ("gradient descent") over the
    one that answers it. What separates them, by rules of English rather than of one course:

    * **what the question asks about**: the question's distinctive words (weighted by how few pooled sentences
      share them) should be what the sentence is about (they open it) and be in it at all. "What does the
      learning rate do in gradient boosting?" is about the learning rate: every sentence of the pool says
      "gradient boosting".
    * **a definition, when a definition is asked for**: a sentence that defines a term earns its bonus in the
      share of the question's weight its term carries. "What are support vectors?" asks for the definition of
      support vectors; "Why do people add momentum to gradient descent?" is set in gradient descent but asks
      about momentum, and the definition of gradient descent does not answer it.
    * **the form of the answer**: a "why" question (or one asking what happens, whether something is safe or
      needed) is answered by a sentence that gives a reason or a consequence (:data:`REASON`: because, since,
      so that, to avoid, otherwise, would ...); a "how" question by one that describes a mechanism
      (:data:`MECHANISM`: by doing, works by, each, until ...); a comparison by one that contrasts
      (:data:`CONTRAST`: while, whereas, unlike, than ...).
    """
    from quizgen.embed import embed
    from quizgen.glossary import parse_definition
    from tutor.knowledge.search import content_terms

    def stems(text: str) -> set[str]:
        # A crude stem of words over four letters: "clusters" meets "cluster", "scaling" meets "scale" (but "used"
        # and "use", "tree" and "trees" stay apart: the weights were measured with this).
        return {re.sub(r"(?:ing|ed|es|e|s)$", "", w)[:5] if len(w) > 4 else w for w in content_terms(text)}

    texts = [c.sentence.text for c in pool]
    vectors = embed([question, *texts])
    cosine = vectors[1:] @ vectors[0]
    asked = stems(question)
    pooled = [stems(t) for t in texts]
    weight = {w: math.log(1 + len(pool) / n) for w in asked if (n := sum(w in p for p in pooled))}
    total = sum(weight.values()) or 1.0
    kind = question_kind(question)
    form = {"why": REASON, "how": MECHANISM, "compare": CONTRAST}.get(kind)
    parts: list[dict[str, float]] = []
    for i, c in enumerate(pool):
        opening = stems(" ".join(texts[i].split()[:SUBJECT_WORDS]))
        subject = sum(weight.get(w, 0.0) for w in asked & opening) / total
        covered = sum(weight.get(w, 0.0) for w in asked & pooled[i]) / total
        definition = parse_definition(c.sentence)
        defines = 0.0
        named = (
            max((stems(n) for n in definition.names if stems(n) <= asked), key=len, default=set())
            if definition
            else set()
        )
        if (
            named
        ):  # the question names the defined term, in any number ("What are support vectors?": "A support vector is")
            share = sum(weight.get(w, 0.0) for w in asked & named) / total
            defines = 1.0 if kind == "what" or share >= DEFINES_SHARE else share
        parts.append(
            {
                "cosine": float(cosine[i]),
                "defines": DEFINES_WEIGHT * defines,
                "subject": SUBJECT_WEIGHT * subject,
                "covers": COVERS_WEIGHT * covered,
                "form": FORM_WEIGHT * bool(form is not None and form.search(texts[i])),
                "passage": -PASSAGE_WEIGHT * c.passage_rank,
                "opens": OPENS_WEIGHT * c.opens,
            }
        )
    return parts


# What a question asks for, read off its wording (:func:`question_kind`).
WHY_QUESTION = re.compile(
    r"\b(?:why|how come|what (?:is|was) the (?:reason|point|problem)|what problem|what happens|what goes wrong"
    r"|is it (?:safe|fine|ok|okay|bad|wise|a good idea)|should i|do i (?:need|have) to|can i trust)\b",
    re.IGNORECASE,
)
HOW_QUESTION = re.compile(r"\bhow (?:does|do|did|is|are|was|were|can|could|would|should|exactly|actually)\b", re.I)
COMPARE_QUESTION = re.compile(
    r"\b(?:difference|differ|different from|compare[sd]?|comparison|versus|vs\.?|better than)\b", re.IGNORECASE
)
# The forms of English that answer them: a reason or a consequence, a mechanism, a contrast.
REASON = re.compile(
    r"\b(?:because|since|so that|so|in order to|to (?:avoid|prevent|keep|stop|make)|otherwise|would|without"
    r"|therefore|thus|hence|which (?:means|makes|lets|forces|causes)|causes?|leads? to|results? in|prevents?"
    r"|allows?|lets|forces?)\b",
    re.IGNORECASE,
)
MECHANISM = re.compile(
    r"\b(?:by \w+ing|works? by|\w+s by|each|every|then|until|step|first|takes?|computes?|adds?|multipl\w*"
    r"|divides?|subtracts?|splits?|chooses?|picks?|returns?|finds?|repeats?|alternates?)\b",
    re.IGNORECASE,
)
CONTRAST = re.compile(r"\b(?:while|whereas|unlike|than|but|instead|however|on the other hand|in contrast)\b", re.I)


def question_kind(question: str) -> str:
    """The form of sentence that answers ``question`` (:func:`rank`): "why", "how", "compare" or "what"."""
    if COMPARE_QUESTION.search(question):
        return "compare"
    if WHY_QUESTION.search(question):
        return "why"
    if HOW_QUESTION.search(question):
        return "how"
    return "what"


def covers(kb: Any, query: str, hits: Sequence[Any]) -> bool:
    """Whether the search ``hits`` answer ``query``, or the course is silent on it.

    Measured on 40 course questions and 10 off-topic ones (README, "Grounded tutor"): no single similarity
    separates them (an off-topic question's best passage reached cosine 0.46, an on-topic one's fell to
    0.22), but words the course never uses do. Off-topic questions leave at least two of their content words
    unmatched and their best passage below 0.25; on-topic ones leave at most two (a "what's", a "people").
    On other notes a question can name one method the notes never mention ("How does word2vec learn word
    vectors?") and still pass both tests; a coined name the course lacks (:func:`_is_name`) is not covered.
    Words that frame the question (:data:`FRAME_WORDS`: "problem", "drawbacks") are not counted either way.
    """
    if not hits:
        return False
    from tutor.knowledge.search import content_terms

    words = [w for w in content_terms(query) if w not in FRAME_WORDS]
    missing = set(kb.missing_terms(query)) - FRAME_WORDS
    if words and len(missing) >= MISSING_SHARE * len(words):
        return False
    if any(_is_name(query, term) for term in missing):
        return False  # "How does word2vec learn?": the course never names the method asked about
    return not (missing and hits[0].dense < MIN_DENSE)


class GroundedTutor:
    """Answers from a knowledge base: ``GroundedTutor(model, kb).answer("What is dropout?")``."""

    def __init__(self, model: Any, kb: Any, mode: str = "extractive", lead: bool = True) -> None:
        """Borrow ``model`` (any Model) and ``kb`` (a :class:`tutor.knowledge.KnowledgeBase`).

        ``lead``: an extractive answer opens with the best-ranked sentence and the model adds what it chooses
        (measured better than a free choice: README, "Grounded tutor").
        """
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.model = model
        self.kb = kb
        self.mode = mode
        self.lead = lead

    def retrieve(self, question: str) -> list[Any]:
        """The hits that cover the question, best first; [] when the course has nothing relevant."""
        hits = self.kb.search(question, k=SEARCH_K)
        return hits if covers(self.kb, question, hits) else []

    def answer(self, question: str, history: Sequence[Any] | None = None) -> Answer:
        """The whole answer at once."""
        answer = self._answer(question, history, stream=False)[1]
        assert answer is not None, "an answer not streamed is whole"
        return answer

    def stream(self, question: str, history: Sequence[Any] | None = None) -> Iterator[str]:
        """Yield the answer as it is decoded, then its sources (the pieces join to ``Answer.render()``)."""
        pieces, answer = self._answer(question, history, stream=True)
        answer = (yield from pieces) or answer
        if answer is not None and answer.sources:
            yield answer.sources_text()

    def _answer(
        self, question: str, history: Sequence[Any] | None, stream: bool
    ) -> tuple[Iterator[str], Answer | None]:
        question = _check(question)
        hits = self.retrieve(question)
        if not hits:
            return iter([NOT_IN_COURSE]), Answer(NOT_IN_COURSE, [], grounded=False, mode=self.mode)
        if self.mode == "extractive":
            return self._extractive(question, hits, stream)
        return self._generative(question, hits, history, stream)

    def _extractive(self, question: str, hits: list[Any], stream: bool) -> tuple[Iterator[str], Answer | None]:
        """The chosen sentences; streamed, the opening sentence comes before the model runs (it is decided already).

        Streamed, the answer is not known until the model has chosen: the pieces' generator returns it (None
        stands in its place in the tuple).
        """
        offered = self.offered_sentences(question, hits)
        texts = [s for s, _ in offered]
        lead = texts[0] if self.lead else None

        def choose() -> Answer:
            # The model reads only the sentences it may choose from: a third of the passages' tokens, the same choice.
            course = "\n".join(f"- {sentence}" for sentence in texts)
            messages = [
                {"role": "system", "content": f"{SYSTEM}\n\nCourse text:\n{course}"},
                {"role": "user", "content": question},
            ]
            text = self.model.generate(messages, sentence_regex(texts, lead=lead), max_tokens=EXTRACTIVE_MAX_TOKENS)
            chosen = list(dict.fromkeys(split_answer(text, texts)))  # a sentence said twice, once
            cite = dict(offered)
            return Answer(" ".join(chosen), list(dict.fromkeys(cite[s] for s in chosen)), mode="extractive")

        if not stream:
            answer = choose()
            return iter([answer.text]), answer

        def pieces() -> Generator[str, None, Answer]:
            # The grammar makes the best-ranked sentence open every answer: a student reads it at once, while
            # the model (behind other students' requests, maybe) chooses what to add.
            if lead is not None:
                yield lead
            answer = choose()
            rest = answer.text[len(lead) :] if lead is not None else answer.text  # the grammar put the lead first
            if rest:
                yield rest
            return answer

        return pieces(), None

    def _generative(
        self, question: str, hits: list[Any], history: Sequence[Any] | None, stream: bool
    ) -> tuple[Iterator[str], Answer]:
        messages = self.messages(question, hits, history)
        sources = list(dict.fromkeys(h.passage.cite() for h in hits))
        sampling = {"max_tokens": GENERATIVE_MAX_TOKENS, "repetition_penalty": 1.15}
        if stream:
            pieces = self.model.stream(messages, **sampling)
            return pieces, Answer("", sources, mode="generative")
        text = self.model.generate(messages, **sampling).strip()
        return iter([text]), Answer(text, sources, mode="generative")

    def offered_sentences(self, question: str, hits: list[Any]) -> list[tuple[str, str]]:
        """(sentence, citation) pairs the extractive grammar may use: the most relevant first (:func:`rank`).

        Two things the starter course never needed and ordinary notes do (README, "Grounded tutor", unseen notes):

        * A hit from the middle of a section brings the section's opening passage with it: notes state what a
          section is about in its first paragraph ("Boosting is an ensemble strategy ..."), and a short later
          paragraph that repeats the question's words ("The first widely used boosting algorithm ...") can
          outrank it in the search.
        * A sentence that refers back ("These values are known as pseudo-residuals.", "As a result it can ...")
          is offered together with the sentence before it, as one piece of course text: alone it names the
          answer without saying it.
        * A sentence of another section than the best-ranked one's is offered only when it carries at least
          :data:`ADD_SHARE` of the question's weight: the model added such asides ("The size of that move is set by
          the learning rate alpha." to an answer on experience replay; 46 of 108 answers of the four evaluation
          sets cited two sections or more, 16 after this rule).
        """
        from quizgen.glossary import is_prose, sentences

        pool: list[Candidate] = []
        seen: set[str] = set()
        for rank_, passage in self._passages(hits):
            parts = sentences(passage)
            for i, s in enumerate(parts):
                if s.text not in seen and _usable(s.text, is_prose):
                    seen.add(s.text)
                    text = _with_antecedent(passage, parts, i, is_prose)
                    pool.append(Candidate(s, passage.cite(), rank_, opens=s.start == passage.start, text=text))
        if not pool:
            return [(h.passage.text.strip(), h.passage.cite()) for h in hits][:SENTENCE_CHOICES]
        offered: list[tuple[str, str]] = []
        parts = score_parts(question, pool)
        order = sorted(range(len(pool)), key=lambda i: -sum(parts[i].values()))
        section = pool[order[0]].cite
        for i in order:
            c = pool[i]
            if offered and c.cite != section and parts[i]["covers"] < COVERS_WEIGHT * ADD_SHARE:
                continue  # another section's sentence on little of what was asked: an answer's aside, off the point
            sentence, text = c.sentence.text, c.text or c.sentence.text
            if any(sentence in t for t, _ in offered):
                continue  # already said, alone or inside a longer piece
            before = text[: -len(sentence)].rstrip()
            if before and any(before in t and before != t for t, _ in offered):
                text = sentence  # its antecedent is said inside another piece: never say a sentence twice
            inside = [j for j, (t, _) in enumerate(offered) if t in text]
            if inside:  # the piece replaces the sentence it contains, at that sentence's better place
                offered[inside[0]] = (text, c.cite)
                offered = [o for j, o in enumerate(offered) if j not in inside[1:]]
            else:
                offered.append((text, c.cite))
            if len(offered) == SENTENCE_CHOICES:
                break
        return offered

    def _passages(self, hits: list[Any]) -> list[tuple[int, Any]]:
        """(search rank, passage) for each hit, each preceded by its section's opening passage when it is not one."""
        out: list[tuple[int, Any]] = []
        ids: set[int] = set()
        everything = self.kb.passages()  # one snapshot, held in memory by the knowledge base
        for rank_, hit in enumerate(hits):
            opening = _section_opening(everything, hit.passage)
            for passage in (opening, hit.passage):
                if passage is not None and passage.id not in ids:
                    ids.add(passage.id)
                    out.append((rank_, passage))
        return out

    def messages(self, question: str, hits: list[Any], history: Sequence[Any] | None) -> list[dict[str, str]]:
        """The chat the model reads: the course text, the recent history, the question."""
        course = "\n\n".join(f"[{h.passage.cite()}]\n{h.passage.text[:PROMPT_PASSAGE_CHARS]}" for h in hits)
        messages = [{"role": "system", "content": f"{SYSTEM}\n\nCourse text:\n{course}"}]
        from tutor.explain import normalize_history, recent

        messages.extend(recent(normalize_history(history), HISTORY_MESSAGES))
        messages.append({"role": "user", "content": question})
        return messages


# Words that open a sentence leaning on the one before it ("These values are known as ...", "As a result it ...").
BACK_REFERENCES = re.compile(
    r"(?:this|these|that|those|it|they|such|there,|here|thus|hence|therefore|instead|as a result|in short"
    r"|in other words|either way|for this reason|because of this|to do this)(?!\w)",
    re.IGNORECASE,
)


def _with_antecedent(passage: Any, parts: Sequence[Any], i: int, is_prose: Any) -> str | None:
    """The passage's text from sentence ``i - 1`` to sentence ``i`` when sentence ``i`` refers back, else None."""
    if i == 0 or not BACK_REFERENCES.match(parts[i].text) or not is_prose(parts[i - 1].text):
        return None
    return passage.text[parts[i - 1].start - passage.start : parts[i].end - passage.start]


def _is_name(text: str, term: str) -> bool:
    """Whether ``term`` is written in ``text`` as a coined name ("word2vec", "GloVe", "fastText").

    A coined name has a digit inside letters or a capital after a small letter; an acronym ("KNN") or a version
    ("L2") is not one: students spell those freely, and the course may write "k-NN".
    """
    for m in re.finditer(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text, re.IGNORECASE):
        if re.search(r"[A-Za-z]\d+[A-Za-z]|[a-z][A-Z]", m.group(0)):
            return True
    return False


def _section_opening(passages: Sequence[Any], passage: Any) -> Any | None:
    """The first of ``passages`` in ``passage``'s section (same document, same headings); None when it is that one."""
    section = [p for p in passages if p.doc == passage.doc and p.headings == passage.headings]
    first = min(section, key=lambda p: p.start, default=None)
    return first if first is not None and first.id != passage.id else None


def _usable(text: str, is_prose: Any) -> bool:
    return is_prose(text) and not re.search(r"\s{2,}", text)


def _check(question: Any) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty: type a question or a concept to explain")
    return question.strip()
