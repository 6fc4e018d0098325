"""Readers of our export formats that read them the way their importers do, for the export tests.

* :func:`read_gift` follows Moodle's GIFT importer (question/format/gift/format.php, ``readquestion`` for
  multiple choice, and ``qformat_default::readquestions``): blocks split at blank lines, ``//`` comment lines,
  the ``\\\\`` and ``\\:`` escapes through Moodle's own placeholders, the answer section between the first ``{``
  and the first ``}``, general feedback after the last ``####``, PHP ``trim`` around every field, a leading
  ``[format]`` and a leading ``%n%`` weight.
* :func:`read_anki` follows Anki's CSV importer (rslib import_export/text/csv: the Rust ``csv`` crate with
  ``comment(b'#')``, ``flexible``, a tab delimiter, ``"`` quoting, and CR, LF or CRLF ending a record).
* :func:`read_qti` opens a QTI zip and checks each item against the QTI 2.1 content model we use (the IMS
  XSD is not shipped by any package we can install offline), returning what a learner would see.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

PHP_TRIM = " \t\n\r\0\x0b"
QTI = "{http://www.imsglobal.org/xsd/imsqti_v2p1}"
CP = "{http://www.imsglobal.org/xsd/imscp_v1p1}"
LETTERS = ("A", "B", "C", "D")

# ---- GIFT (as Moodle reads it) ------------------------------------------------------------------------

_ESCAPES = {"\\:": "&&058;", "\\#": "&&035;", "\\=": "&&061;", "\\{": "&&123;", "\\}": "&&125;", "\\~": "&&126;"}
_ESCAPES["\\n"] = "&&010"
_PLACEHOLDERS = {"&&058;": ":", "&&035;": "#", "&&061;": "=", "&&123;": "{", "&&125;": "}", "&&126;": "~"}
_PLACEHOLDERS["&&010"] = "\n"
_FORMATS = ("moodle", "html", "plain", "markdown")
_WEIGHT = re.compile(r"^%-*([0-9]{1,2})\.?([0-9]*)%")


@dataclass
class GiftAnswer:
    """One answer of a multiple-choice question as Moodle stores it."""

    fraction: float
    text: str
    feedback: str


@dataclass
class GiftQuestion:
    """A multiple-choice question as Moodle stores it (texts in ``fmt``; read them with :func:`html_text`)."""

    name: str
    fmt: str
    text: str
    general_feedback: str
    answers: list[GiftAnswer] = field(default_factory=list)


def read_gift(text: str) -> list[GiftQuestion]:
    """The questions Moodle's importer would make of ``text``; AssertionError where it would refuse one."""
    questions, block = [], []
    for line in text.split("\n"):  # PHP file() splits at LF only
        line = line.strip(PHP_TRIM)
        if line in ("", "0"):  # PHP empty(): "0" is empty too
            if block:
                questions.append(_read_question(block))
            block = []
        else:
            block.append(line)
    if block:
        questions.append(_read_question(block))
    return [q for q in questions if q is not None]


def _escaped_pre(text: str) -> str:
    text = text.replace("\\\\", "&&092;")
    for escape, placeholder in _ESCAPES.items():
        text = text.replace(escape, placeholder)
    return text.replace("&&092;", "\\")


def _escaped_post(text: str) -> str:
    for placeholder, char in _PLACEHOLDERS.items():
        text = text.replace(placeholder, char)
    return text


def _with_format(text: str, default: str = "moodle") -> tuple[str, str]:
    fmt = default
    if text.startswith("["):
        end = text.find("]")
        name = text[1:end] if end >= 0 else text[1:-1]
        if name in _FORMATS:  # PHP: substr($text, false + 1) when there is no "]"
            fmt, text = name, text[end + 1 :] if end >= 0 else text[1:]
    return fmt, _escaped_post(text).strip(PHP_TRIM)


def _read_question(lines: list[str]) -> GiftQuestion | None:
    lines = [" " if line.strip(PHP_TRIM).startswith("//") else line for line in lines]
    text = "\n".join(lines).strip(PHP_TRIM)
    if not text:
        return None
    text = _escaped_pre(text)
    assert not text.startswith("$CATEGORY:"), "a category line, not a question"
    name = ""
    if text.startswith("::"):
        text = text[2:]
        end = text.find("::")
        assert end >= 0, "no end to the question name"
        name, text = _escaped_post(text[:end]), text[end + 2 :].strip(PHP_TRIM)
    start, finish = text.find("{"), text.find("}")
    assert start >= 0 and finish >= 0, "no answer section: Moodle reads a description, not a question"
    answers = text[start + 1 : finish].strip(PHP_TRIM)
    assert text.endswith("}"), "text after the answers: Moodle reads a missing-word question"
    question_text = text[:start] + text[finish + 1 :]
    general = ""
    if (separator := answers.rfind("####")) >= 0:
        general, answers = answers[separator + 4 :], answers[:separator].strip(PHP_TRIM)
    fmt, stem = _with_format(question_text)
    _, general = _with_format(general, fmt)
    assert "~" in answers, "not a multiple-choice question"
    parts = answers.replace("=", "~=").split("~")
    if not parts[0].strip(PHP_TRIM):
        parts = parts[1:]
    assert len(parts) >= 2, "a multiple-choice question needs two answers"
    question = GiftQuestion(name, fmt, stem, general)
    for part in parts:
        part = part.strip(PHP_TRIM)
        fraction = 0.0
        if part.startswith("="):
            fraction, part = 1.0, part[1:]
        elif _WEIGHT.match(part):  # we never write a weight: -1 marks an option Moodle would read as one
            fraction, part = -1.0, part[part.index("%", 1) + 1 :]
        answer, _, feedback = part.partition("#")
        question.answers.append(
            GiftAnswer(
                fraction, _with_format(answer.strip(PHP_TRIM), fmt)[1], _with_format(feedback.strip(PHP_TRIM), fmt)[1]
            )
        )
    return question


def html_text(text: str) -> str:
    """What an HTML field shows: ``<br>`` as a line break, character references resolved."""
    return html.unescape(text.replace("<br>", "\n"))


# ---- Anki TSV (as Anki's CSV importer reads it) -------------------------------------------------------


def read_anki(text: str) -> list[list[str]]:
    """The records of an Anki text file: comment lines skipped, fields split at tabs, quotes honoured."""
    records: list[list[str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in "\r\n":  # an empty line is no record
            i += 1
            continue
        if text[i] == "#":
            while i < n and text[i] not in "\r\n":
                i += 1
            continue
        record, value, quoted = [], [], False
        while i < n:
            ch = text[i]
            if quoted:
                if ch == '"' and text[i + 1 : i + 2] == '"':
                    value.append('"')
                    i += 2
                    continue
                quoted = ch != '"'
                if quoted:
                    value.append(ch)
                i += 1
            elif ch == '"' and not value:
                quoted, i = True, i + 1
            elif ch == "\t":
                record.append("".join(value))
                value, i = [], i + 1
            elif ch in "\r\n":
                i += 2 if text[i : i + 2] == "\r\n" else 1
                break
            else:
                value.append(ch)
                i += 1
        record.append("".join(value))
        records.append(record)
    return records


# ---- QTI 2.1 --------------------------------------------------------------------------------------------

# assessmentItem's children, in the order the QTI 2.1 XSD requires (each group may repeat or be absent).
_ITEM_ORDER = ("responseDeclaration", "outcomeDeclaration", "itemBody", "responseProcessing", "modalFeedback")


@dataclass
class QtiItem:
    """What one QTI item shows and scores."""

    title: str
    prompt: str
    choices: list[str]
    correct: str
    feedback: dict[str, list[str]]


def read_qti(data: bytes) -> list[QtiItem]:
    """The items of a QTI 2.1 package, each parsed as XML and checked against the structure we write."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        manifest = ET.fromstring(archive.read("imsmanifest.xml"))
        assert manifest.tag == f"{CP}manifest"
        resources = manifest.findall(f"{CP}resources/{CP}resource")
        items = []
        for resource in resources:
            href = resource.get("href")
            assert resource.get("type") == "imsqti_item_xmlv2p1" and href in names
            assert [f.get("href") for f in resource.findall(f"{CP}file")] == [href]
            items.append(_read_item(ET.fromstring(archive.read(href))))
        assert len(names) == len(resources) + 1, "a file the manifest does not name"
    return items


def _read_item(root: ET.Element) -> QtiItem:
    assert root.tag == f"{QTI}assessmentItem"
    assert {"identifier", "title", "adaptive", "timeDependent"} <= set(root.attrib)
    order = [child.tag.removeprefix(QTI) for child in root]
    assert order == sorted(order, key=_ITEM_ORDER.index), order
    declared = {d.get("identifier") for d in root.findall(f"{QTI}outcomeDeclaration")}
    declared |= {d.get("identifier") for d in root.findall(f"{QTI}responseDeclaration")}
    assert {"RESPONSE", "SCORE", "FEEDBACK"} <= declared
    (interaction,) = root.findall(f"{QTI}itemBody/{QTI}choiceInteraction")
    assert interaction.get("responseIdentifier") == "RESPONSE" and interaction.get("maxChoices") == "1"
    (prompt,) = interaction.findall(f"{QTI}prompt")
    choices = interaction.findall(f"{QTI}simpleChoice")
    assert [c.get("identifier") for c in choices] == list(LETTERS) and all(len(c) == 0 for c in choices)
    correct = root.findall(f"{QTI}responseDeclaration/{QTI}correctResponse/{QTI}value")
    assert len(correct) == 1 and correct[0].text in LETTERS
    feedback = {}
    for modal in root.findall(f"{QTI}modalFeedback"):
        assert modal.get("outcomeIdentifier") == "FEEDBACK" and modal.get("showHide") == "show"
        assert not (modal.text or "").strip(), "text outside the paragraphs"
        assert all(p.tag == f"{QTI}p" and len(p) == 0 for p in modal)
        feedback[modal.get("identifier")] = [p.text or "" for p in modal]
    assert sorted(feedback) == list(LETTERS)
    return QtiItem(root.get("title", ""), prompt.text or "", [c.text or "" for c in choices], correct[0].text, feedback)
