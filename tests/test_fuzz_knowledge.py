"""Knowledge-base ingestion, names and queries, fed generated input: it works or raises KnowledgeError, and fast.

* Markup: Markdown, reStructuredText and plain text made of the constructs each parser treats specially
  (fences, front matter, directives, tables, comments, math, adornments) in any order, unclosed or nested. Every
  parse ends within the hang guard, and every passage is an exact slice of the document's text.
* Files: any bytes under each supported extension, and PDFs with bytes changed (``read_document``).
* The page's upload path (``tutor.tutors.add_notes``): a batch with one bad file leaves the knowledge base as it
  was (a new one is not left behind), whatever the bad file holds.
* Names and queries: any knowledge-base name is a name or a KnowledgeError; any query and any ``k`` searches.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import NASTY, budget, clear_error_or_works, no_hang, scratch
from tests.test_knowledge import PDF_PAGES, make_pdf
from tutor.knowledge.ingest import SUPPORTED, TEXT_FORMATS, read_document
from tutor.knowledge.parse import parse_md, parse_rst, parse_txt
from tutor.knowledge.passages import Document, layout
from tutor.knowledge.store import KnowledgeBase, check_name, open_kb

WORK = scratch("kb-")
DB = WORK / "knowledge.db"

PROSE = [
    "Dropout randomly zeroes units during training.",
    "It reduces overfitting, e.g. in large networks. Weight decay is another way!",
    "A sentence without an end",
    "we compute it as:",
    "Is this a question?",
    "x" * 300 + ".",
    "😀 ש \u202e é",
    "",
    "   ",
]
MARKUP = [
    "# Heading",
    "## Sub heading ##",
    "Title",
    "=====",
    "-----",
    "~~~~~",
    "```",
    "```python",
    "~~~",
    "$$",
    "\\[",
    "\\]",
    "<!--",
    "-->",
    "<div>",
    "| a | b |",
    "|---|---|",
    "> quoted text.",
    "- item one.",
    "* item",
    "1. first.",
    "1) first",
    "(a) item",
    "#. auto",
    "[ref]: http://example.com",
    "[link](http://x)",
    "![img](a.png)",
    "    indented code",
    "\tx",
    "---",
    "...",
    ".. note::",
    ".. note:: inline note.",
    ".. code-block:: python",
    ".. math::",
    ".. _target:",
    ".. [1] footnote",
    ".. admonition:: Title",
    "   :class: tip",
    ".. rubric:: A rubric",
    "::",
    "Paragraph::",
    "Term",
    "   Definition of the term.",
    "+---+---+",
    "| x | y |",
    "=== ===",
    "`link <http://x>`__",
    "**bold** and *em* and ``code`` and :math:`x^2` and :ref:`y`",
    "\r",
    "\x00",
    "\x0c",
    "\u2028",
]
lines = st.sampled_from(PROSE + MARKUP) | st.text(max_size=30)
documents = st.lists(lines, max_size=25).map("\n".join)
PARSERS = {"md": parse_md, "rst": parse_rst, "txt": parse_txt}


def check_layout(doc: Document) -> None:
    """Every passage is an exact, non-blank slice of the document's text, under headings that are text."""
    for chunk in doc.chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text and chunk.text.strip(), chunk
        assert all(isinstance(h, str) for h in chunk.headings)


@budget(100)
@given(st.sampled_from(sorted(PARSERS)), documents)
@example("md", "```\n" + "x\n" * 5000)  # an unclosed fence swallows the rest, in one pass
@example("md", "---\n" + "a: b\n" * 3000)  # front matter that never closes
@example("rst", ".. note::\n" + "   .. note::\n" * 200 + "      deep.")  # admonitions nested 200 deep
@example("rst", "Title\n=====\n\n" + "x\n" * 3000)
@example("md", "<!--\n" * 3000)
@example("md", "$$\n" * 3000)
def test_markup_parses_fast_into_passages_that_are_slices(kind: str, text: str) -> None:
    with no_hang(10):
        doc = layout(PARSERS[kind](text), f"doc.{kind}", "doc")
    check_layout(doc)


def write(name: str, data: bytes) -> Path:
    path = WORK / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@budget(60)
@given(
    st.sampled_from(sorted(TEXT_FORMATS)),
    documents.map(lambda t: t.encode("utf-8", "surrogatepass")) | st.binary(max_size=300),
)
@example(".md", b"\xef\xbb\xbf# Title\n\nA sentence here.")  # a BOM
@example(".txt", b"caf\xe9 latin-1.")  # not UTF-8
@example(".rst", b"\xed\xa0\x80 a surrogate in UTF-8 form.")  # CESU-8: not UTF-8 either
@example(".md", b"")
def test_any_text_file_is_a_document_or_a_knowledge_error(suffix: str, data: bytes) -> None:
    path = write(f"notes{suffix}", data)
    with no_hang(10):
        doc = clear_error_or_works(lambda: read_document(path.name, path))
    if doc is not None:
        assert doc.chunks
        check_layout(doc)


PDF = make_pdf(PDF_PAGES)


@st.composite
def damaged_pdfs(draw: st.DrawFn) -> bytes:
    """The test PDF with a few bytes changed, a stretch cut out or the file cut short."""
    data = bytearray(PDF)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["byte", "cut", "truncate", "insert"]))
        if how == "byte":
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif how == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.sampled_from([b"(", b")", b"<<", b">>", b"\\", b"999999999 0 R", b"/Length -1"]))
        if not data:
            break
    return bytes(data)


@budget(30, deadline_s=5)
@given(damaged_pdfs() | st.binary(max_size=200).map(lambda b: b"%PDF-1.4\n" + b))
@example(b"%PDF-1.4\n")
@example(PDF.replace(b"/Count 2", b"/Count 99999999"))
@example(PDF.replace(b"/Root 1 0 R", b"/Root 2 0 R"))
def test_any_damaged_pdf_is_a_document_or_a_knowledge_error(data: bytes) -> None:
    path = write("chapter.pdf", data)
    with no_hang(20):
        doc = clear_error_or_works(lambda: read_document(path.name, path))
    if doc is not None:
        check_layout(doc)


@budget(60)
@given(st.sampled_from(NASTY) | st.text(max_size=50) | st.from_regex(r"[A-Za-z0-9][\w.-]{0,45}", fullmatch=True))
@example("Course")
@example("a" * 41)
@example("ǅ")  # titlecase: lower() makes it a valid-looking name in another script
@example("İ")  # lower() makes two characters of one
def test_any_knowledge_base_name_is_a_name_or_a_knowledge_error(name: str) -> None:
    canonical = clear_error_or_works(lambda: check_name(name))
    if canonical is not None:
        assert canonical == check_name(canonical), "a checked name checks as itself"
        assert "/" not in canonical and canonical not in (".", "..") and canonical.isascii()


@pytest.fixture(scope="module")
def notes_kb() -> KnowledgeBase:
    """A knowledge base of two small documents in this module's own file."""
    kb = open_kb("fuzznotes", create=True, path=DB)
    md = write("dropout.md", b"# Dropout\n\nDropout zeroes units at random during training. It reduces overfitting.")
    rst = write(
        "rate.rst", b"Learning rate\n=============\n\nThe learning rate sets the step size of k-means-free SGD."
    )
    kb.add([md, rst])
    return kb


@budget(60)
@given(
    st.sampled_from(NASTY)
    | st.text(max_size=60)
    | st.lists(st.sampled_from([*NASTY, "dropout", "AND", "NEAR"])).map(" ".join),
    st.integers(-3, 60) | st.sampled_from([10**6, 2**63, 10**30]),
    st.sampled_from([None, "bm25", "hybrid", "dense", "rrf"]),
)
@example('"dropout', 5, None)  # FTS5 syntax in a query
@example("dropout OR NOT rate NEAR(x) ^a* col:text", 5, "bm25")
@example("__ _x_ '' ’’ - -- k-means-", 3, None)
@example("dropout", 2**63, None)  # a k SQLite cannot hold
@example("\ud800dropout\x00", 3, "hybrid")
def test_any_query_searches_or_is_a_knowledge_error(
    notes_kb: KnowledgeBase, query: str, k: int, mode: str | None
) -> None:
    with no_hang(10):
        hits = clear_error_or_works(lambda: notes_kb.search(query, k, mode=mode))
        missing = clear_error_or_works(lambda: notes_kb.missing_terms(query))
    if hits is not None:
        assert len(hits) <= max(k, 0) and all(h.passage.text for h in hits)
    if missing is not None:
        assert all(isinstance(t, str) for t in missing)


def kb_state(name: str) -> tuple | None:
    """What a knowledge base holds (documents, passage texts), or None when it does not exist."""
    kb = KnowledgeBase(name, path=DB)
    if not kb.exists():
        return None
    return tuple(kb.documents()), tuple(p.text for p in kb.passages())


@budget(12, deadline_s=10)
@given(
    st.sampled_from(["fuzzadd", "fuzznew"]),
    st.sampled_from(sorted(SUPPORTED)),
    st.binary(max_size=100) | documents.map(str.encode),
)
@example("fuzznew", ".pdf", b"%PDF-1.4\nnot a pdf")
@example("fuzzadd", ".txt", b"\x00binary")
def test_an_upload_with_a_bad_file_leaves_the_knowledge_base_as_it_was(name: str, suffix: str, data: bytes) -> None:
    """``add_notes`` (the page's Add notes, ``ta kb add``): all the files are added, or none and a clear error."""
    with mock.patch.dict(os.environ, {"TA_DATA_DIR": str(WORK)}):
        upload(name, suffix, data)


def upload(name: str, suffix: str, data: bytes) -> None:
    from tutor import tutors

    if name == "fuzzadd" and kb_state(name) is None:
        tutors.add_notes(name, [str(write("base.md", b"# Base\n\nA base document that is always there."))])
    before = kb_state(name)
    good = write("good.md", b"# Good\n\nA good document with a sentence in it.")
    bad = write(f"upload{suffix}", data)
    added = clear_error_or_works(lambda: tutors.add_notes(name, [str(good), str(bad)]))
    after = kb_state(name)
    if added is None:
        assert after == before, "a failed upload changed the knowledge base"
    else:
        assert after is not None and {"good.md", bad.name} <= set(after[0])
        KnowledgeBase(name, path=DB).remove()  # start the next example from the same state
        if name == "fuzzadd":
            tutors.add_notes(name, [str(write("base.md", b"# Base\n\nA base document that is always there."))])
