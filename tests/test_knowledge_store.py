"""The knowledge base: index, search, re-add, the shipped course, bad input, interrupted adds, `ta kb`."""

from __future__ import annotations

import argparse
import sqlite3
import threading
from pathlib import Path

import pytest

from tutor.knowledge import (
    COURSE,
    MAX_FILE_MB,
    AddReport,
    KnowledgeBase,
    KnowledgeError,
    open_kb,
    store,
    vectors,
)
from tutor.knowledge import cli as kb_cli
from tutor.knowledge import data_dir as kb_data_dir

DROPOUT = """# Regularization

## Dropout

Dropout randomly sets a fraction of a layer's activations to zero during training.
It keeps units from co-adapting.

## Early stopping

Early stopping halts training when the validation error stops improving.
"""
TREES = """Decision Trees
==============

A decision tree splits the data on one feature at a time. Gini impurity measures how mixed a node is.
"""


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own knowledge.db (never the home directory)."""
    monkeypatch.setenv("TA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "week2").mkdir(parents=True)
    (folder / "dropout.md").write_text(DROPOUT)
    (folder / "week2" / "trees.rst").write_text(TREES)
    (folder / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")  # unsupported files in a folder are ignored
    (folder / ".hidden.md").write_text("# Hidden\n\nNot indexed.\n")
    return folder


def snapshot(kb: KnowledgeBase) -> tuple:
    """Everything observable about a knowledge base, for before/after comparisons."""
    docs = kb.documents()
    return (
        docs,
        [(p.id, p.doc, p.headings, p.start, p.end, p.text) for p in kb.passages()],
        [kb.document_text(d) for d in docs],
        [h.passage.id for h in kb.search("dropout activations", k=5)],
    )


def test_data_dir_follows_the_environment(_data_dir: Path) -> None:
    assert kb_data_dir() == _data_dir
    open_kb("x", create=True)
    assert (_data_dir / "knowledge.db").is_file()
    with sqlite3.connect(_data_dir / "knowledge.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_search_and_list(notes: Path) -> None:
    kb = KnowledgeBase.create("mynotes")
    report = kb.add([notes])
    assert report == AddReport(added=["dropout.md", "week2/trees.rst"], passages=3)
    assert kb.documents() == ["dropout.md", "week2/trees.rst"]
    assert KnowledgeBase.names() == [COURSE, "mynotes"]
    passages = kb.passages()
    assert [(p.doc, p.headings) for p in passages] == [
        ("dropout.md", ("Regularization", "Dropout")),
        ("dropout.md", ("Regularization", "Early stopping")),
        ("week2/trees.rst", ("Decision Trees",)),
    ]
    first = passages[0]
    assert first.text == "Dropout randomly sets a fraction of a layer's activations to zero during training. " + (
        "It keeps units from co-adapting."
    )
    assert first.cite() == "dropout.md › Regularization › Dropout"
    assert first.title == "Regularization"
    assert kb.document_text("dropout.md")[first.start : first.end] == first.text
    hits = kb.search("What does dropout do to activations?", k=2)
    assert hits[0].passage == first
    assert hits[0].bm25 > 0 and hits[0].score >= hits[-1].score
    assert kb.search("what is gini impurity", k=1)[0].passage.doc == "week2/trees.rst"
    assert kb.search("capital of France") == []
    assert kb.search("what is it") == []  # stop words only
    assert kb.missing_terms("how does dropout relate to word2vec") == ["relate", "word2vec"]


def test_vectors_are_stored_and_used_where_wordllama_is_installed(notes: Path) -> None:
    pytest.importorskip("wordllama")
    kb = open_kb("v", create=True)
    kb.add([notes])
    assert kb.stats()["vectors"] is True
    hit = kb.search("dropout activations", k=1)[0]
    assert 0.2 < hit.dense <= 1.0
    assert kb.search("dropout activations", k=1, mode="bm25")[0].passage == hit.passage


def test_without_wordllama_search_is_bm25(notes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "embedder", lambda: None)
    kb = open_kb("plain", create=True)
    kb.add([notes])
    assert kb.stats()["vectors"] is False
    hits = kb.search("dropout activations")
    assert hits and all(h.dense == 0.0 and h.score == h.bm25 for h in hits)


def test_readd_skips_unchanged_and_reindexes_changed(notes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb = open_kb("mynotes", create=True)
    kb.add([notes])
    before = {p.doc: p for p in kb.passages()}
    assert kb.add([notes]) == AddReport(skipped=["dropout.md", "week2/trees.rst"])
    (notes / "dropout.md").write_text(DROPOUT.replace("co-adapting", "relying on each other"))
    (notes / "extra.txt").write_text("Momentum accumulates past gradients.\n")
    report = kb.add([notes])
    assert (report.added, report.updated, report.skipped) == (["extra.txt"], ["dropout.md"], ["week2/trees.rst"])
    assert kb.search("co-adapting") == []
    assert "relying on each other" in kb.search("relying on each other", k=1)[0].passage.text
    after = {p.doc: p for p in kb.passages()}
    assert after["week2/trees.rst"] == before["week2/trees.rst"]  # untouched documents keep their ids
    monkeypatch.setattr(store.ingest, "INGEST_VERSION", 999)  # a new extractor re-reads every document
    assert sorted(kb.add([notes]).updated) == ["dropout.md", "extra.txt", "week2/trees.rst"]


def test_course_is_indexed_on_first_open_and_follows_shipped_files(tmp_path: Path, monkeypatch) -> None:
    shipped = tmp_path / "course"
    shipped.mkdir()
    (shipped / "dropout.md").write_text(DROPOUT)
    (shipped / "trees.rst").write_text(TREES)
    monkeypatch.setattr(store, "COURSE_DIR", shipped)
    course = open_kb(COURSE)
    assert course.documents() == ["dropout.md", "trees.rst"]
    generation = course._snapshot().generation
    assert open_kb(COURSE)._snapshot().generation == generation  # unchanged files: no re-index
    (shipped / "dropout.md").write_text(DROPOUT.replace("co-adapting", "relying on each other"))
    (shipped / "trees.rst").unlink()
    course = open_kb(COURSE)
    assert course.documents() == ["dropout.md"]
    assert course.search("relying on each other")
    with pytest.raises(KnowledgeError, match="shipped starter course"):
        course.add([shipped])
    with pytest.raises(KnowledgeError, match="shipped starter course"):
        course.remove()
    with pytest.raises(KnowledgeError, match="shipped starter course"):
        KnowledgeBase.create(COURSE)


def test_the_real_course_is_clean(tmp_path: Path) -> None:
    if not store._course_files():
        pytest.skip("no lessons in tutor/course yet")
    course = open_kb(COURSE)
    docs = course.documents()
    assert docs == [p.name for p in store._course_files()]
    for p in course.passages():
        assert course.document_text(p.doc)[p.start : p.end] == p.text
        assert "**" not in p.text and "\n" not in p.text and "  " not in p.text, p.cite()
        assert p.headings and p.headings[0] == p.title, p.cite()


def test_real_notes_search_finds_the_right_passage(data_dir: Path) -> None:
    kb = open_kb("notes", create=True)
    kb.add([data_dir / "notes"])
    assert len(kb.documents()) == 5
    for query, doc, heading in [
        ("What does dropout do?", "layers.rst", "Dropout"),
        ("Which function maps predictions to probabilities?", "logistic_regression.rst", "Sigmoid activation"),
        ("How does memoization save work in backpropagation?", "backpropagation.rst", "Saving work with memoization"),
        ("Why normalize the input features?", "linear_regression.rst", "Normalization"),
    ]:
        top = kb.search(query, k=1)[0].passage
        assert (top.doc, heading in top.headings) == (doc, True), (query, top.cite())


# -- bad input: each a clear error naming the file, nothing written ----------------------------------------------


def bad_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    return path


def encrypted_pdf(tmp_path: Path) -> Path:
    pypdf = pytest.importorskip("pypdf")
    from test_knowledge import PDF_PAGES, make_pdf

    path = tmp_path / "secret.pdf"
    path.write_bytes(make_pdf(PDF_PAGES))
    writer = pypdf.PdfWriter(clone_from=str(path))
    writer.encrypt(user_password="pw", algorithm="RC4-128")
    with path.open("wb") as f:
        writer.write(f)
    return path


def binary(tmp_path: Path) -> Path:
    path = tmp_path / "photo.txt"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def huge(tmp_path: Path) -> Path:
    path = tmp_path / "huge.md"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them
    return path


def empty_folder(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    (path / "readme.docx").write_bytes(b"PK")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (bad_pdf, r"broken\.pdf: not a readable PDF"),
        (encrypted_pdf, r"secret\.pdf: the PDF is encrypted"),
        (binary, r"photo\.txt: this is a binary file"),
        (huge, rf"huge\.md: 50\.0 MB is over the {MAX_FILE_MB} MB limit"),
        (empty_folder, r"empty: no \.md, \.rst, \.txt, \.pdf files in this folder"),
        (lambda tmp: tmp / "nowhere.md", r"nowhere\.md: no such file or folder"),
        (lambda tmp: binary(tmp).rename(tmp / "photo.png"), r"photo\.png: unsupported file type \.png"),
    ],
)
def test_bad_input_names_the_file_and_leaves_the_index_as_it_was(tmp_path: Path, notes: Path, make, message) -> None:
    kb = open_kb("mynotes", create=True)
    kb.add([notes / "dropout.md"])
    before = snapshot(kb)
    bad = make(tmp_path)
    (notes / "dropout.md").write_text(DROPOUT + "\nA changed line that must not be indexed.\n")
    with pytest.raises(KnowledgeError, match=message):
        kb.add([notes, bad])  # good files first: they must not be written either
    assert snapshot(kb) == before


@pytest.mark.parametrize("name", ["", "My Notes", "../etc", "a" * 41, "-x", "notes;drop"])
def test_bad_knowledge_base_names(name: str) -> None:
    with pytest.raises(KnowledgeError, match="bad knowledge base name"):
        open_kb(name, create=True)


def test_missing_knowledge_base() -> None:
    with pytest.raises(KnowledgeError, match=r"no knowledge base named 'nope': see `ta kb list`"):
        open_kb("nope")
    assert "nope" not in KnowledgeBase.names()
    kb = open_kb("gone", create=True)
    kb.remove()
    with pytest.raises(KnowledgeError, match="no knowledge base named 'gone'"):
        kb.search("anything")


def test_same_name_from_two_folders_is_refused(tmp_path: Path, notes: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "dropout.md").write_text(DROPOUT)
    with pytest.raises(KnowledgeError, match=r"dropout\.md: another file given is also named 'dropout\.md'"):
        open_kb("x", create=True).add([notes, other])


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
def test_interrupted_add_leaves_the_previous_index_intact(notes: Path, monkeypatch, interrupt) -> None:
    kb = open_kb("mynotes", create=True)
    kb.add([notes])
    before = snapshot(kb)
    (notes / "dropout.md").write_text(DROPOUT.replace("co-adapting", "relying on each other"))
    (notes / "new.md").write_text("# New\n\nA new lesson about momentum.\n")
    real, calls = store._insert_document, []

    def insert_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # midway: the first changed document is already written in this transaction
            raise interrupt()
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "_insert_document", insert_then_fail)
    with pytest.raises(interrupt):
        kb.add([notes])
    assert len(calls) == 2
    assert snapshot(kb) == before
    assert kb.search("momentum") == [] and kb.search("co-adapting")
    monkeypatch.setattr(store, "_insert_document", real)
    report = kb.add([notes])
    assert (report.added, report.updated) == (["new.md"], ["dropout.md"])


def test_readers_and_a_writer_at_once(notes: Path, tmp_path: Path) -> None:
    kb = open_kb("busy", create=True)
    kb.add([notes])
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                assert kb.search("dropout", k=1)
                assert kb.passages()
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(5):
            (notes / "dropout.md").write_text(DROPOUT + f"\nRevision {i} of these notes.\n")
            assert kb.add([notes]).updated == ["dropout.md"]
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors


# -- ta kb ---------------------------------------------------------------------------------------------------------


def ta(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ta")
    kb_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_add_list_search_remove(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ta("kb", "add", "mynotes", str(notes)) == 0
    out = capsys.readouterr().out
    assert "added     dropout.md" in out and "mynotes: 2 added, 0 updated, 0 unchanged" in out
    assert ta("kb", "add", "mynotes", str(notes / "dropout.md")) == 0
    assert "1 unchanged" in capsys.readouterr().out
    assert ta("kb", "list") == 0
    assert "mynotes" in capsys.readouterr().out
    assert ta("kb", "list", "mynotes") == 0
    assert capsys.readouterr().out.split() == ["dropout.md", "week2/trees.rst"]
    assert ta("kb", "search", "mynotes", "what", "does", "dropout", "do", "-k", "1") == 0
    out = capsys.readouterr().out
    assert out.startswith("1. dropout.md › Regularization › Dropout") and "randomly sets a fraction" in out
    assert ta("kb", "search", "mynotes", "capital of France") == 1
    assert "nothing in 'mynotes' matches" in capsys.readouterr().out
    assert ta("kb", "remove", "mynotes") == 0
    with pytest.raises(KnowledgeError, match="no knowledge base named 'mynotes'"):
        ta("kb", "search", "mynotes", "dropout")


def test_cli_failed_first_add_leaves_no_empty_knowledge_base(tmp_path: Path, notes: Path) -> None:
    with pytest.raises(KnowledgeError, match=r"photo\.txt: this is a binary file"):
        ta("kb", "add", "fresh", str(notes), str(binary(tmp_path)))
    assert "fresh" not in KnowledgeBase.names()
    with pytest.raises(KnowledgeError, match="bad knowledge base name"):
        ta("kb", "add", "Bad Name!", str(notes))


def test_cli_through_ta_main_prints_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from tutor import cli

    try:
        rc = cli.main(["kb", "search", "nope", "x"])
    except SystemExit:
        pytest.skip("`ta kb` is not wired into tutor.cli yet")
    assert rc == 2
    assert "ta kb: error: no knowledge base named 'nope'" in capsys.readouterr().err
