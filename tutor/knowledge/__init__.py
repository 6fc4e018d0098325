"""The course knowledge base: files (md, rst, txt, pdf) -> passages that keep their place -> SQLite FTS5 + vectors.

    >>> from tutor.knowledge import open_kb
    >>> kb = open_kb("course")                       # the shipped starter course, indexed on first use
    >>> for hit in kb.search("what does dropout do", k=3):
    ...     print(hit.passage.cite(), hit.passage.text[:60])
    >>> mine = open_kb("mynotes", create=True)
    >>> mine.add(["notes/", "chapter1.pdf"])          # AddReport(added=[...], updated=[...], skipped=[...])

Nothing heavy is imported here: pypdf loads when a PDF is read, wordllama when vectors are first needed.
"""

from tutor.knowledge.errors import KnowledgeError
from tutor.knowledge.ingest import MAX_FILE_BYTES, MAX_FILE_MB, SUPPORTED
from tutor.knowledge.passages import split_sentences
from tutor.knowledge.search import Hit, Passage
from tutor.knowledge.store import COURSE, AddReport, KnowledgeBase, data_dir, open_kb
from tutor.knowledge.vectors import embed

__all__ = [
    "COURSE",
    "MAX_FILE_BYTES",
    "MAX_FILE_MB",
    "SUPPORTED",
    "AddReport",
    "Hit",
    "KnowledgeBase",
    "KnowledgeError",
    "Passage",
    "data_dir",
    "embed",
    "open_kb",
    "split_sentences",
]
