"""quizgen.export and quizgen.grade: round trips, sources in every format, GIFT as Moodle reads it, QTI, Anki, sessions.

Generated hostile questions for every format are in tests/test_fuzz_export.py; these are the readable cases.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from xml.etree import ElementTree as ET

import pytest

from quizgen import QuizSession
from quizgen.export import (
    FORMATS,
    UNGROUNDED,
    dumps,
    from_json,
    gift_escape,
    to_anki,
    to_gift,
    to_json,
    to_qti,
    to_text,
)
from quizgen.schema import LETTERS, Quiz, Source
from tests.export_readers import html_text, read_anki, read_gift, read_qti
from tests.quizgen_fixtures import make_question, make_quiz

QTI = "{http://www.imsglobal.org/xsd/imsqti_v2p1}"
CP = "{http://www.imsglobal.org/xsd/imscp_v1p1}"
NASTY = 'Is {x} = y? Use ~a, #b: "c" \\ d\nnext line\tand <tag> & more'


def nasty_quiz() -> Quiz:
    quiz = make_quiz(2)
    q = make_question(stem=NASTY, options=["a = b", "{set}", "c ~ d", "key: value #1"], explanation="x <y> & z")
    quiz.questions[0] = quiz.questions[0].model_copy(update={"question": q})
    return quiz


def test_json_round_trip_is_lossless() -> None:
    quiz = nasty_quiz()
    text = to_json(quiz)
    doc = json.loads(text)
    assert set(doc) == {"topic", "questions", "metadata"} and doc["questions"][0]["question"]["stem"] == NASTY
    assert from_json(text) == quiz
    assert from_json(to_json(from_json(text))) == quiz


def test_from_json_rejects_a_non_quiz() -> None:
    with pytest.raises(ValueError, match="not a quiz"):
        from_json('{"topic": "x", "questions": [{"question": {"stem": "too few"}}]}')


def gift_unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def test_gift_escape_every_special_character() -> None:
    escaped = gift_escape(NASTY)
    assert "\n" not in escaped, "a raw newline could end the question"
    # Every special character in the output is escaped, and unescaping gives the text back.
    assert re.search(r"(?<!\\)[~=#{}:]", escaped.replace("\\\\", "")) is None
    assert gift_unescape(escaped) == NASTY.replace("\t", "\t")


def test_gift_reads_back_in_moodle_as_written() -> None:
    quiz = nasty_quiz()
    gift = to_gift(quiz)
    assert gift.startswith("// gradient descent: 2 questions")
    read = read_gift(gift)
    assert len(read) == len(quiz.questions)
    for got, item in zip(read, quiz.questions, strict=True):
        q = item.question
        assert got.fmt == "html" and html_text(got.text) == q.stem
        assert [a.fraction for a in got.answers] == [1.0 if x == q.answer else 0.0 for x in LETTERS]
        assert [html_text(a.text) for a in got.answers] == q.options
        assert html_text(got.general_feedback) == q.explanation
        assert [html_text(a.feedback) for a in got.answers[1:]] == [q.wrong_reasons[x] for x in "BCD"]
    assert "Source" not in gift, "a question without a source keeps its feedback as it was"


def test_qti_zip_parses_with_an_xml_parser() -> None:
    quiz = nasty_quiz()
    data = to_qti(quiz)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert "imsmanifest.xml" in names
        manifest = ET.fromstring(archive.read("imsmanifest.xml"))
        hrefs = [r.get("href") for r in manifest.iter(f"{CP}resource")]
        assert len(hrefs) == len(quiz.questions) and all(h in names for h in hrefs)
        for href, item in zip(hrefs, quiz.questions, strict=True):
            root = ET.fromstring(archive.read(href))
            assert root.tag == f"{QTI}assessmentItem"
            assert root.find(f".//{QTI}correctResponse/{QTI}value").text == item.question.answer
            assert root.find(f".//{QTI}prompt").text == item.question.stem
            choices = root.findall(f".//{QTI}simpleChoice")
            assert [c.get("identifier") for c in choices] == list(LETTERS)
            assert [c.text for c in choices] == item.question.options
            assert len(root.findall(f"{QTI}modalFeedback")) == 4


def test_anki_tsv_has_one_note_per_question() -> None:
    quiz = nasty_quiz()
    tsv = to_anki(quiz)
    header = [line for line in tsv.splitlines() if line.startswith("#")]
    assert "#separator:tab" in header and "#html:true" in header
    rows = list(
        csv.reader([x for x in tsv.splitlines() if not x.startswith("#")], delimiter="\t", quoting=csv.QUOTE_NONE)
    )
    assert len(rows) == len(quiz.questions) and all(len(r) == 3 for r in rows)
    front, back, tags = rows[0]
    assert "&lt;tag&gt; &amp; more" in front and "<br>next line" in front
    assert back.startswith(f"<b>{quiz.questions[0].question.answer}.")
    assert "verified" in tags.split() and "unverified" in rows[-1][2].split()


def test_text_and_dispatch() -> None:
    quiz = make_quiz(2)
    assert "UNVERIFIED" in to_text(quiz) and "Answer: A." in to_text(quiz) and UNGROUNDED in to_text(quiz)
    assert set(FORMATS) == {"json", "gift", "qti", "anki", "text"}
    assert isinstance(dumps(quiz, "qti"), bytes) and json.loads(dumps(quiz, "json"))["topic"] == quiz.topic
    with pytest.raises(ValueError, match="unknown format"):
        dumps(quiz, "pdf")


# ---- sources -----------------------------------------------------------------------------------------

KEY_SOURCE = Source(
    kb="starter",
    doc="regularization.md",
    headings=("Regularization", "Weight decay"),
    start=120,
    end=181,
    quote="Weight decay adds a penalty on the size of the weights to the loss.",
)
REASON_SOURCE = Source(
    kb="starter", doc="dropout.md", headings=("Dropout",), start=0, end=40, quote="Dropout drops units."
)
KEY_CITE = "regularization.md › Regularization › Weight decay"
REASON_CITE = "dropout.md › Dropout"


def grounded_quiz() -> Quiz:
    """Question 1 grounded (its key and its reason for B cited), question 2 written without a source."""
    quiz = make_quiz(2)
    q = make_question(
        stem="Which method adds a penalty on the size of the weights to the loss?",
        options=["weight decay", "dropout", "early stopping", "bagging"],
        explanation=KEY_SOURCE.quote,
        wrong_reasons={"B": REASON_SOURCE.quote, "C": "It stops training early.", "D": "It averages models."},
        source=KEY_SOURCE,
        reason_sources={"B": REASON_SOURCE},
    )
    quiz.questions[0] = quiz.questions[0].model_copy(update={"question": q})
    return quiz


def test_json_keeps_every_source() -> None:
    quiz = grounded_quiz()
    doc = json.loads(to_json(quiz))
    first, second = (item["question"] for item in doc["questions"])
    assert first["source"]["headings"] == ["Regularization", "Weight decay"] and first["source"]["start"] == 120
    assert set(first["reason_sources"]) == {"B"} and second["source"] is None and second["reason_sources"] == {}
    back = from_json(to_json(quiz))
    assert back == quiz and back.questions[0].question.source == KEY_SOURCE and back.questions[0].question.grounded
    assert not back.questions[1].question.grounded


def test_gift_feedback_cites_the_sources() -> None:
    first, second = read_gift(to_gift(grounded_quiz()))
    assert html_text(first.general_feedback) == f"{KEY_SOURCE.quote}\nSource: {KEY_CITE}"
    feedback = [html_text(a.feedback) for a in first.answers]
    assert feedback[0] == f"{KEY_SOURCE.quote}\nSource: {KEY_CITE}"
    assert feedback[1] == f"{REASON_SOURCE.quote}\nSource: {REASON_CITE}"
    assert feedback[2:] == ["It stops training early.", "It averages models."], "reasons without a source"
    assert "Source" not in html_text(second.general_feedback) + "".join(a.feedback for a in second.answers)
    assert "<br>Source\\: regularization.md › Regularization › Weight decay" in to_gift(grounded_quiz())


def test_qti_feedback_cites_the_sources() -> None:
    first, second = read_qti(to_qti(grounded_quiz()))
    assert first.feedback["A"] == [KEY_SOURCE.quote, f"Source: {KEY_CITE}"]
    assert first.feedback["B"] == [
        REASON_SOURCE.quote,
        f"Source: {REASON_CITE}",
        KEY_SOURCE.quote,
        f"Source: {KEY_CITE}",
    ]
    assert first.feedback["C"] == ["It stops training early.", KEY_SOURCE.quote, f"Source: {KEY_CITE}"]
    q = make_question()
    assert second.feedback["A"] == [q.explanation] and second.feedback["B"] == [q.wrong_reasons["B"], q.explanation]


def test_anki_back_cites_the_source() -> None:
    (_, first_back, _), (_, second_back, _) = read_anki(to_anki(grounded_quiz()))
    assert first_back == f"<b>A. weight decay</b><br><br>{KEY_SOURCE.quote}<br>Source: {KEY_CITE}"
    assert "Source" not in second_back


def test_text_shows_each_source_and_marks_an_ungrounded_question() -> None:
    text = to_text(grounded_quiz())
    first, second = text.split("\n\n2. ")
    assert first.splitlines()[-2:] == [f"   Answer: A. {KEY_SOURCE.quote}", f"   Source: {KEY_CITE}"]
    assert second.rstrip().splitlines()[-2:] == [f"   Answer: A. {make_question().explanation}", f"   {UNGROUNDED}"]
    assert UNGROUNDED == "(ungrounded: written by the model without a source)"


def test_text_indents_line_breaks_and_drops_control_characters() -> None:
    q = make_question(stem="First line\n2. looks like a question\x1b[2J?", explanation="one\r\ntwo\ffour")
    quiz = make_quiz(1)
    quiz.questions[0] = quiz.questions[0].model_copy(update={"question": q})
    lines = to_text(quiz).splitlines()
    assert lines[2] == "1. First line" and lines[3].startswith("      2. looks like a question[2J?")
    assert "   Answer: A. one" in lines and "      two" in lines and "      four" in lines


def test_session_grades_and_explains() -> None:
    quiz = make_quiz(3)
    session = QuizSession(quiz)
    assert (session.score, session.answered, session.total) == (0, 0, 3)
    right = session.answer(0, "a")
    assert right.correct and right.right_letter == "A" and right.why_wrong is None and right.explanation
    wrong = session.answer(1, "C")
    assert not wrong.correct and wrong.right_letter == "A"
    assert wrong.why_wrong == quiz.questions[1].question.wrong_reasons["C"]
    assert (session.score, session.answered) == (1, 2) and not session.finished
    session.answer(1, "A")  # answering again replaces the answer
    assert session.score == 2
    with pytest.raises(ValueError, match="A-D"):
        session.answer(2, "E")
    with pytest.raises(ValueError, match="no question 3"):
        session.answer(3, "A")


def test_new_quiz_new_session_starts_clean() -> None:
    first = QuizSession(make_quiz(2))
    first.answer(0, "A")
    first.answer(1, "A")
    assert first.finished and first.score == 2
    second = QuizSession(make_quiz(3, topic="overfitting"))
    assert (second.score, second.answered, second.total) == (0, 0, 3)
    first.reset()
    assert (first.score, first.answered) == (0, 0)
