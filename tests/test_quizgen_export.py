"""quizgen.export and quizgen.grade: round trips, GIFT escaping, QTI parsed as XML, Anki TSV, sessions."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from xml.etree import ElementTree as ET

import pytest

from quizgen import QuizSession
from quizgen.export import FORMATS, dumps, from_json, gift_escape, to_anki, to_gift, to_json, to_qti, to_text
from quizgen.schema import LETTERS, Quiz
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


def test_gift_document_structure() -> None:
    quiz = nasty_quiz()
    gift = to_gift(quiz)
    blocks = [b for b in gift.strip().split("\n\n") if not b.startswith("//")]
    assert len(blocks) == len(quiz.questions)
    for block, item in zip(blocks, quiz.questions, strict=True):
        q = item.question
        head, body = block.split(" {\n", 1)
        assert gift_unescape(head.split(":: ", 1)[1]) == q.stem
        answers = [line.strip() for line in body.splitlines() if line.strip()[:1] in "=~"]
        assert len(answers) == 4 and [a[0] for a in answers] == ["=" if x == q.answer else "~" for x in LETTERS]
        for line, option in zip(answers, q.options, strict=True):
            text = re.split(r"(?<!\\)#", line[1:])[0]
            assert gift_unescape(text) == option
        assert body.rstrip().endswith("}")


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
    assert "UNVERIFIED" in to_text(quiz) and "Answer: A." in to_text(quiz)
    assert set(FORMATS) == {"json", "gift", "qti", "anki", "text"}
    assert isinstance(dumps(quiz, "qti"), bytes) and json.loads(dumps(quiz, "json"))["topic"] == quiz.topic
    with pytest.raises(ValueError, match="unknown format"):
        dumps(quiz, "pdf")


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
