"""Passages, hits and ranking: BM25 over the FTS5 index, re-scored with dense cosine similarity where vectors exist.

Ranking modes, measured by ``python -m tutor.knowledge.measure`` (see its docstring for the figures):

- ``bm25``: FTS5 BM25 over the passage text and (weighted :data:`CONTEXT_WEIGHT`) its title and heading path.
- ``hybrid`` (the default): BM25's candidates re-scored as ``bm25 / best_bm25 + DENSE_WEIGHT * cosine``.
  Only passages that share a word with the query are candidates, so a question with no word in common with
  the course gets ``[]``. A question that shares only common words ("How do I train my dog?") still gets
  hits: :func:`missing_terms` names the question's words that no passage contains ("dog").
- ``dense``: cosine similarity alone over every passage; ``rrf``: reciprocal rank fusion (k=60) of the BM25
  and dense rankings. Both measured worse than ``bm25`` and are kept for the measurement only.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from tutor.knowledge import vectors
from tutor.knowledge.errors import KnowledgeError
from tutor.knowledge.passages import split_sentences

MODE = "hybrid"  # the default ranking
MODES = ("bm25", "hybrid", "dense", "rrf")
CONTEXT_WEIGHT = 2.0  # BM25 weight of the title and heading path, relative to the passage text (1.0)
DENSE_WEIGHT = 0.5  # weight of cosine similarity against BM25 normalised by the best candidate's
CANDIDATES = 50  # how many BM25 candidates are re-scored
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al., 2009)

_STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does doing done for from had has have how i if in into is it
    its me my of on or our should so than that the their them then there these they this those to was we were what
    when where which who whom why will with would you your explain describe define tell about mean means meaning
    difference between vs versus""".split()
)


@dataclass(frozen=True)
class Passage:
    """A stretch of one document's plain text, with its place: document, heading path, character span."""

    id: int  # stable within one index (never reused, new when its document is re-indexed)
    doc: str  # the document's name as the user gave it, relative ("dropout.md")
    title: str  # the document's title (first heading, else the file stem)
    headings: tuple[str, ...]  # heading path inside the document, outermost first
    start: int  # character span of `text` in the document's extracted plain text
    end: int
    text: str  # plain prose: sentences end in . ? or ! and are separated by single spaces

    def cite(self) -> str:
        """Where the passage is: ``"dropout.md › Regularization › Dropout"``."""
        return " › ".join((self.doc, *self.headings))

    def sentences(self) -> list[str]:
        """The passage's sentences (see :func:`tutor.knowledge.passages.split_sentences`)."""
        return split_sentences(self.text)


@dataclass(frozen=True)
class Hit:
    """One search result: the passage and its scores (higher is better; comparable within one search)."""

    passage: Passage
    score: float  # the ranking score: BM25 in bm25 mode, bm25/best + 0.5 cosine in hybrid mode
    bm25: float  # BM25 (sign flipped so higher is better); 0.0 when the passage shares no word with the query
    dense: float  # cosine similarity in [-1, 1]; 0.0 when vectors are off


def content_terms(query: str) -> list[str]:
    """The query's content words, stop words left out; a hyphenated word stays one term ("k-means").

    A contraction's clitic goes ("what's" is the stop word "what"), and a negated auxiliary with it.
    """
    terms: dict[str, None] = {}
    for token in re.findall(r"\w+(?:[-'’]\w+)*", query.lower()):
        if re.search(r"n['’]t$", token):
            continue  # "doesn't", "isn't": an auxiliary, never what a question is about
        token = re.sub(r"['’](?:s|re|ve|ll|d|m)$", "", token)  # "what's" is "what", "the model's" is "model"
        parts = [p for p in re.split(r"[-'’]", token) if p]
        if len(parts) == 1 and (parts[0] in _STOPWORDS or (len(parts[0]) < 2 and not parts[0].isdigit())):
            continue
        terms[token] = None
    return list(terms)


def _phrase(term: str) -> str:
    return '"' + " ".join(p for p in re.split(r"[-'’]", term) if p).replace('"', '""') + '"'


def fts_query(query: str) -> str | None:
    """An FTS5 query matching any content word of ``query`` (hyphenated words as phrases); ``None`` if it has none."""
    return " OR ".join(_phrase(t) for t in content_terms(query)) or None


def missing_terms(conn: sqlite3.Connection, kb_id: int, query: str) -> list[str]:
    """The query's content words that no passage of the knowledge base contains (after Porter stemming)."""
    sql = (
        "SELECT 1 FROM passage_fts f JOIN passage p ON p.id = f.rowid WHERE passage_fts MATCH ? AND p.kb_id = ? LIMIT 1"
    )
    return [t for t in content_terms(query) if conn.execute(sql, (_phrase(t), kb_id)).fetchone() is None]


def _bm25(conn: sqlite3.Connection, kb_id: int, match: str, limit: int) -> list[tuple[int, float]]:
    rows = conn.execute(
        "SELECT f.rowid, bm25(passage_fts, 1.0, ?) FROM passage_fts f JOIN passage p ON p.id = f.rowid "
        "WHERE passage_fts MATCH ? AND p.kb_id = ? ORDER BY 2 LIMIT ?",
        (CONTEXT_WEIGHT, match, kb_id, limit),
    ).fetchall()
    return [(int(pid), -float(score)) for pid, score in rows]


def rank(
    conn: sqlite3.Connection,
    kb_id: int,
    passages: dict[int, Passage],
    ids: list[int],
    matrix: Any,
    query: str,
    k: int,
    mode: str | None = None,
) -> list[Hit]:
    """The top ``k`` hits for ``query`` in one knowledge base (see the module docstring for the modes)."""
    mode = mode or MODE
    if mode not in MODES:
        raise KnowledgeError(f"unknown ranking mode {mode!r}: use one of {', '.join(MODES)}")
    match = fts_query(query)
    if not match:
        return []
    lexical = _bm25(conn, kb_id, match, max(k, CANDIDATES))
    bm25 = dict(lexical)
    cosine: dict[int, float] = {}
    if matrix is not None:
        sims = matrix @ vectors.embed([query])[0]
        cosine = {pid: float(s) for pid, s in zip(ids, sims.tolist(), strict=True)}
    if mode == "bm25" or not cosine:
        order = lexical
    elif mode == "hybrid":
        best = lexical[0][1] if lexical else 1.0
        order = sorted(((pid, b / best + DENSE_WEIGHT * cosine[pid]) for pid, b in lexical), key=lambda x: -x[1])
    elif mode == "dense":
        order = sorted(cosine.items(), key=lambda x: -x[1])
    else:
        fused: dict[int, float] = {}
        dense_order = sorted(cosine.items(), key=lambda x: -x[1])[:CANDIDATES]
        for ranking in (lexical, dense_order):
            for r, (pid, _) in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + r + 1)
        order = sorted(fused.items(), key=lambda x: -x[1])
    return [
        Hit(passage=passages[pid], score=score, bm25=bm25.get(pid, 0.0), dense=cosine.get(pid, 0.0))
        for pid, score in order[:k]
        if pid in passages
    ]
