"""Ingestion: each format to clean prose passages that keep their place (no model, no index)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tutor.knowledge import KnowledgeError, split_sentences
from tutor.knowledge.ingest import read_document
from tutor.knowledge.inline import latex_to_text, rst_inline
from tutor.knowledge.passages import MAX_CHARS

# Markup that must never reach a passage: roles, literals, emphasis, directives, link syntax, LaTeX, line breaks.
DEBRIS = re.compile(r":math:|:ref:|:doc:|``|\*\*|(?:^|\s)\.\. |`_|<https?:|\]\(|\\[a-z]+|\n|  |\$\$|^#|\|")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def check_clean(doc) -> None:
    """The invariants every document's passages keep."""
    assert doc.chunks, f"{doc.name}: no passages"
    for c in doc.chunks:
        assert doc.text[c.start : c.end] == c.text, (doc.name, c.headings)
        assert not DEBRIS.search(c.text), (doc.name, c.headings, DEBRIS.search(c.text), c.text)
        assert re.search(r"[.?!][\"'”’)\]]*$", c.text), (doc.name, c.text[-60:])
        assert len(c.text) <= MAX_CHARS or len(split_sentences(c.text)) == 1, (doc.name, len(c.text))


# -- the real course pages (reStructuredText from ml-glossary) ---------------------------------------------------


@pytest.fixture(scope="module")
def notes(data_dir: Path) -> dict:
    return {p.name: read_document(p.name, p) for p in sorted((data_dir / "notes").glob("*.rst"))}


def test_real_notes_are_clean_prose_with_exact_spans(notes: dict) -> None:
    assert len(notes) == 5
    for doc in notes.values():
        check_clean(doc)
        joined = " ".join(c.text for c in doc.chunks)
        assert not re.search(r"\bdef \w+\(|np\.|self\.|print\(|\w+ = \[", joined)  # code is dropped
        assert "align" not in joined and "images/" not in joined  # so are images and their options


def test_real_notes_heading_paths(notes: dict) -> None:
    lr = notes["linear_regression.rst"]
    assert lr.title == "Linear Regression"
    cost = next(c for c in lr.chunks if c.text.startswith("The prediction function is nice"))
    assert cost.headings == ("Linear Regression", "Simple regression", "Cost function")
    # A rubric is the innermost heading; a section heading of the same name elsewhere has its own path.
    assert ("Linear Regression", "Multivariable regression", "Cost function") in {c.headings for c in lr.chunks}
    types = next(c for c in notes["logistic_regression.rst"].chunks if c.headings[-1] == "Types of logistic regression")
    assert types.text == "Binary (Pass/Fail); Multi (Cats, Dogs, Sheep); Ordinal (Low, Medium, High)."
    dropout = [c for c in notes["layers.rst"].chunks if c.headings == ("Layers", "Dropout")]
    assert "randomly sets a certain fraction (dropout rate) of the activatons to 0" in dropout[0].text
    # A lead-in list joins its paragraph: "For example: A layer in a neural net outputs a tensor ..."
    assert any(c.text.startswith("For example: A layer in a neural net outputs") for c in dropout)


def test_real_notes_roles_links_and_math_become_words(notes: dict) -> None:
    lr = " ".join(c.text for c in notes["linear_regression.rst"].chunks)
    assert "where m and b are the variables our algorithm will try to" in lr  # :math:`m`
    assert "What we need is a cost function so we can start" in lr  # :doc:`cost function <loss_functions>`
    assert "To minimize MSE we use gradient descent to calculate" in lr  # :doc:`gradient_descent`
    assert "we are given a dataset with the following columns" in lr  # `dataset <http://...>`_
    assert "we can calculate MSE as" not in lr  # a lead-in to a dropped formula goes with it
    backprop = " ".join(c.text for c in notes["backpropagation.rst"].chunks)
    assert "(ŷ-y) * R'(Zo)" in backprop  # :math:`(\hat{y}-y) * R'(Zo)`
    algos = " ".join(c.text for c in notes["classification_algos.rst"].chunks)
    assert "global optimality." in algos and "[#" not in algos  # footnote references removed
    assert "Information gain ratio (Normalized" not in algos  # grid tables are not prose


def test_passages_never_cross_a_heading(notes: dict) -> None:
    for doc in notes.values():
        for c in doc.chunks:
            heading_lines = [m.start() for m in re.finditer(r"^#+ ", doc.text, re.MULTILINE)]
            assert not any(c.start < at < c.end for at in heading_lines), (doc.name, c.headings)


# -- Markdown, plain text -------------------------------------------------------------------------------------------

MARKDOWN = """---
title: ignored front matter
---
# Regularization

Regularization **discourages** complex models, see [the notes](http://example.com) and `weight_decay`.
It adds a penalty $\\lambda \\sum_i w_i^2$ to the loss.

![a figure](fig.png)

```python
def penalty(w):
    return sum(x * x for x in w)
```

$$
L = \\frac{1}{N} \\sum_i \\ell_i
$$

| method | penalty |
|--------|---------|
| L1     | abs     |

## Dropout

There are three steps:

- pick a rate
- drop units
- rescale at test time

<!-- a comment
over two lines -->
Setext heading
--------------

Text under a setext heading, with an_underscore_name kept and *emphasis* removed
"""


def test_markdown(tmp_path: Path) -> None:
    doc = read_document("reg.md", write(tmp_path, "reg.md", MARKDOWN))
    check_clean(doc)
    assert doc.title == "Regularization"
    by_path = {c.headings: c.text for c in doc.chunks}
    assert by_path[("Regularization",)] == (
        "Regularization discourages complex models, see the notes and weight_decay. "
        "It adds a penalty λ Σ_i w_i^2 to the loss."
    )
    assert (
        by_path[("Regularization", "Dropout")]
        == "There are three steps: pick a rate; drop units; rescale at test time."
    )
    assert by_path[("Regularization", "Setext heading")] == (
        "Text under a setext heading, with an_underscore_name kept and emphasis removed."
    )


def test_plain_text(tmp_path: Path) -> None:
    text = "Overfitting is when a model\nlearns noise.\n\nIt fails on new data!\n- one item\n- two item\n"
    doc = read_document("notes.txt", write(tmp_path, "notes.txt", text))
    check_clean(doc)
    assert doc.title == "notes"
    assert doc.chunks[0].headings == ()
    assert doc.chunks[0].text == "Overfitting is when a model learns noise. It fails on new data! one item; two item."


def test_long_paragraph_is_cut_between_sentences(tmp_path: Path) -> None:
    sentences = [f"Sentence number {i} says something about gradient descent and its step size." for i in range(60)]
    doc = read_document("long.txt", write(tmp_path, "long.txt", " ".join(sentences)))
    check_clean(doc)
    assert len(doc.chunks) > 3
    assert " ".join(c.text for c in doc.chunks) == " ".join(sentences)


def test_split_sentences_keeps_abbreviations() -> None:
    text = "It predicts values (e.g. sales, price). The rate is .5 here! Is it? Yes, i.e. it is."
    assert split_sentences(text) == [
        "It predicts values (e.g. sales, price).",
        "The rate is .5 here!",
        "Is it?",
        "Yes, i.e. it is.",
    ]


def test_inline_helpers() -> None:
    assert latex_to_text(r"\frac{1}{N} \sum_{i=1}^{n} (y_i - \hat{y}_i)^2") == "1/N Σ_i=1^n (y_i - ŷ_i)^2"
    assert rst_inline(":ref:`the rule <chain_rule>` and :ref:`chain_rule` [#x]_.") == "the rule and chain rule."


# -- PDF -----------------------------------------------------------------------------------------------------------


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF with one text line per string (Helvetica), written by hand."""
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    kids, num = [], 4
    for lines in pages:
        esc = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
        stream = ("BT /F1 11 Tf 14 TL 72 720 Td " + " ".join(f"({s}) Tj T*" for s in esc) + " ET").encode()
        objects[num + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
        objects[num] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (num + 1)
        )
        kids.append(b"%d 0 R" % num)
        num += 2
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(pages))
    out, offsets = b"%PDF-1.4\n", {}
    for i in sorted(objects):
        offsets[i] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (i, objects[i])
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size + b"".join(
        b"%010d 00000 n \n" % offsets[i] for i in range(1, size)
    )
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)


PDF_PAGES = [
    ["Gradient descent lowers the loss by stepping against the gradient of the", "loss with respect to the weights."],
    ["The learning rate sets the size of each step taken by the optimizer."],
]


def test_pdf(tmp_path: Path) -> None:
    path = tmp_path / "chapter1.pdf"
    path.write_bytes(make_pdf(PDF_PAGES))
    doc = read_document("chapter1.pdf", path)
    check_clean(doc)
    assert doc.title == "chapter1"
    assert [c.headings for c in doc.chunks] == [("page 1",), ("page 2",)]
    assert doc.chunks[0].text == (
        "Gradient descent lowers the loss by stepping against the gradient of the loss with respect to the weights."
    )
    assert doc.chunks[1].text == "The learning rate sets the size of each step taken by the optimizer."


def test_pdf_with_an_owner_password_only_is_read(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    import io

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(PDF_PAGES))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as f:
        writer.write(f)
    assert "learning rate" in read_document("locked.pdf", path).text


def test_encrypted_pdf_is_refused_by_name(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    import io

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(PDF_PAGES))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    path = tmp_path / "secret.pdf"
    with path.open("wb") as f:
        writer.write(f)
    with pytest.raises(KnowledgeError, match=r"secret\.pdf: the PDF is encrypted"):
        read_document("secret.pdf", path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.4\nthis is not really a pdf at all\n", "not a readable PDF"),
        (make_pdf(PDF_PAGES)[:150], "not a readable PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a readable PDF"),
        (make_pdf([[]]), "no text layer"),
    ],
)
def test_unreadable_pdf_is_refused_by_name(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    with pytest.raises(KnowledgeError, match=rf"broken\.pdf: .*{message}"):
        read_document("broken.pdf", path)


def test_binary_and_non_utf8_text_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.md"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(KnowledgeError, match=r"image\.md: this is a binary file"):
        read_document("image.md", path)
    path = tmp_path / "latin.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(KnowledgeError, match=r"latin\.txt: not UTF-8 text.*iconv"):
        read_document("latin.txt", path)


def test_file_without_prose_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "code.md", "```python\nprint(1)\n```\n")
    with pytest.raises(KnowledgeError, match=r"code\.md: no prose found"):
        read_document("code.md", path)


def test_import_tutor_does_not_load_pdf_or_vector_libraries() -> None:
    code = "import tutor, tutor.knowledge, sys; print(' '.join(sys.modules))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert "tutor.knowledge" in loaded
    assert not {"pypdf", "wordllama", "numpy"} & loaded
