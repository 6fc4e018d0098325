"""Quiz formats: JSON (lossless, and read back), Moodle GIFT, QTI 2.1 (a zip), Anki TSV, plain text.

``dumps(quiz, fmt)`` dispatches on a name in :data:`FORMATS`; QTI is bytes (a zip), the rest text.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Callable
from xml.etree import ElementTree as ET

from quizgen.schema import LETTERS, Quiz, QuizItem

QTI_NS = "http://www.imsglobal.org/xsd/imsqti_v2p1"
CP_NS = "http://www.imsglobal.org/xsd/imscp_v1p1"
GIFT_SPECIAL = "~=#{}:"


# ---- JSON ------------------------------------------------------------------------------------------


def to_json(quiz: Quiz) -> str:
    """The quiz as one JSON document: ``{"topic": ..., "questions": [...], "metadata": {...}}``."""
    return quiz.model_dump_json(indent=2)


def from_json(text: str | bytes) -> Quiz:
    """Read a quiz written by :func:`to_json` (validated against the schema).

    Raises:
        ValueError: when the text is not a quiz, saying where it breaks.
    """
    from pydantic import ValidationError

    try:
        return Quiz.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"not a quiz JSON document: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc


# ---- Moodle GIFT -----------------------------------------------------------------------------------


def gift_escape(text: str) -> str:
    r"""Escape text for GIFT: a backslash before ``\ ~ = # { } :``; newlines as ``\n`` (blank lines end questions)."""
    text = text.replace("\\", "\\\\")
    for ch in GIFT_SPECIAL:
        text = text.replace(ch, "\\" + ch)
    return text.replace("\r\n", "\n").replace("\n", "\\n")


def to_gift(quiz: Quiz) -> str:
    """Moodle GIFT: one multiple-choice question per block, per-option feedback, the explanation as general feedback."""
    blocks = [f"// {quiz.topic.replace(chr(10), ' ')}: {len(quiz.questions)} questions written by quizgen"]
    for i, item in enumerate(quiz.questions, 1):
        blocks.append(_gift_question(i, item))
    return "\n\n".join(blocks) + "\n"


def _gift_question(number: int, item: QuizItem) -> str:
    q = item.question
    lines = [f"::Q{number}:: {gift_escape(q.stem)} {{"]
    for letter, option in zip(LETTERS, q.options, strict=True):
        if letter == q.answer:
            lines.append(f"  ={gift_escape(option)}#{gift_escape(q.explanation)}")
        else:
            lines.append(f"  ~{gift_escape(option)}#{gift_escape(q.wrong_reasons[letter])}")  # type: ignore[index]
    lines.append(f"  ####{gift_escape(q.explanation)}")
    lines.append("}")
    return "\n".join(lines)


# ---- QTI 2.1 ---------------------------------------------------------------------------------------


def to_qti(quiz: Quiz) -> bytes:
    """A QTI 2.1 content package: a zip with ``imsmanifest.xml`` and one ``items/qN.xml`` per question."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        hrefs = []
        for i, item in enumerate(quiz.questions, 1):
            href = f"items/q{i}.xml"
            archive.writestr(href, _xml_bytes(qti_item(item, f"q{i}")))
            hrefs.append((f"q{i}", href))
        archive.writestr("imsmanifest.xml", _xml_bytes(_manifest(quiz, hrefs)))
    return buffer.getvalue()


def qti_item(item: QuizItem, identifier: str) -> ET.Element:
    """One ``assessmentItem``: a single-choice interaction, scored 1/0, with feedback per chosen option."""
    q = item.question
    root = ET.Element(
        "assessmentItem",
        {
            "xmlns": QTI_NS,
            "identifier": identifier,
            "title": q.stem[:80],
            "adaptive": "false",
            "timeDependent": "false",
        },
    )
    response = ET.SubElement(
        root, "responseDeclaration", {"identifier": "RESPONSE", "cardinality": "single", "baseType": "identifier"}
    )
    ET.SubElement(ET.SubElement(response, "correctResponse"), "value").text = q.answer
    score = ET.SubElement(
        root, "outcomeDeclaration", {"identifier": "SCORE", "cardinality": "single", "baseType": "float"}
    )
    ET.SubElement(ET.SubElement(score, "defaultValue"), "value").text = "0"
    ET.SubElement(
        root, "outcomeDeclaration", {"identifier": "FEEDBACK", "cardinality": "single", "baseType": "identifier"}
    )
    body = ET.SubElement(root, "itemBody")
    interaction = ET.SubElement(
        body, "choiceInteraction", {"responseIdentifier": "RESPONSE", "shuffle": "false", "maxChoices": "1"}
    )
    ET.SubElement(interaction, "prompt").text = q.stem
    for letter, option in zip(LETTERS, q.options, strict=True):
        ET.SubElement(interaction, "simpleChoice", {"identifier": letter}).text = option
    root.append(_response_processing())
    for letter in LETTERS:
        text = q.explanation if letter == q.answer else f"{q.wrong_reasons[letter]} {q.explanation}"  # type: ignore[index]
        feedback = ET.SubElement(
            root, "modalFeedback", {"outcomeIdentifier": "FEEDBACK", "identifier": letter, "showHide": "show"}
        )
        feedback.text = text
    return root


def _response_processing() -> ET.Element:
    rp = ET.Element("responseProcessing")
    condition = ET.SubElement(rp, "responseCondition")
    when = ET.SubElement(condition, "responseIf")
    match = ET.SubElement(when, "match")
    ET.SubElement(match, "variable", {"identifier": "RESPONSE"})
    ET.SubElement(match, "correct", {"identifier": "RESPONSE"})
    for branch, value in ((when, "1"), (ET.SubElement(condition, "responseElse"), "0")):
        outcome = ET.SubElement(branch, "setOutcomeValue", {"identifier": "SCORE"})
        ET.SubElement(outcome, "baseValue", {"baseType": "float"}).text = value
    feedback = ET.SubElement(rp, "setOutcomeValue", {"identifier": "FEEDBACK"})
    ET.SubElement(feedback, "variable", {"identifier": "RESPONSE"})
    return rp


def _manifest(quiz: Quiz, hrefs: list[tuple[str, str]]) -> ET.Element:
    manifest = ET.Element("manifest", {"xmlns": CP_NS, "identifier": "quizgen-manifest"})
    metadata = ET.SubElement(manifest, "metadata")
    ET.SubElement(metadata, "schema").text = "IMS Content"
    ET.SubElement(metadata, "schemaversion").text = "1.1.3"
    ET.SubElement(manifest, "organizations")
    resources = ET.SubElement(manifest, "resources")
    for identifier, href in hrefs:
        resource = ET.SubElement(
            resources, "resource", {"identifier": f"res-{identifier}", "type": "imsqti_item_xmlv2p1", "href": href}
        )
        ET.SubElement(resource, "file", {"href": href})
    manifest.append(ET.Comment(f" {quiz.topic.replace('--', '- -')} "))
    return manifest


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# ---- Anki ------------------------------------------------------------------------------------------


def to_anki(quiz: Quiz) -> str:
    """Anki-importable TSV (File > Import): front = stem and options, back = answer and explanation, tags."""
    lines = ["#separator:tab", "#html:true", "#columns:Front\tBack\tTags", "#tags column:3"]
    topic_tag = "quizgen::" + re.sub(r"[^\w-]+", "_", quiz.topic).strip("_")
    for item in quiz.questions:
        q = item.question
        options = "<br>".join(f"{letter}. {_anki_text(o)}" for letter, o in zip(LETTERS, q.options, strict=True))
        front = f"{_anki_text(q.stem)}<br><br>{options}"
        back = f"<b>{q.answer}. {_anki_text(q.correct_option)}</b><br><br>{_anki_text(q.explanation)}"
        tags = " ".join([topic_tag, q.difficulty, q.bloom_level, "verified" if item.verified else "unverified"])
        lines.append("\t".join((front, back, tags)))
    return "\n".join(lines) + "\n"


def _anki_text(text: str) -> str:
    # Tabs and newlines would split fields or notes: HTML has its own line break.
    return html.escape(text).replace("\t", " ").replace("\r\n", "\n").replace("\n", "<br>")


# ---- plain text ------------------------------------------------------------------------------------


def to_text(quiz: Quiz) -> str:
    """A readable quiz with its answer key and each question's verification status."""
    out = [f"Quiz: {quiz.topic} ({len(quiz.questions)} questions, {quiz.verified_count} verified)", ""]
    for i, item in enumerate(quiz.questions, 1):
        q = item.question
        status = "verified" if item.verified else "UNVERIFIED: " + "; ".join(item.issues)
        out.append(f"{i}. {q.stem}  [{q.difficulty}, {q.bloom_level}; {status}]")
        out.extend(f"   {letter}. {option}" for letter, option in zip(LETTERS, q.options, strict=True))
        out.append(f"   Answer: {q.answer}. {q.explanation}")
        out.append("")
    return "\n".join(out)


FORMATS: dict[str, Callable[[Quiz], str | bytes]] = {
    "json": to_json,
    "gift": to_gift,
    "qti": to_qti,
    "anki": to_anki,
    "text": to_text,
}


def dumps(quiz: Quiz, fmt: str) -> str | bytes:
    """The quiz in format ``fmt`` (one of :data:`FORMATS`); QTI is bytes, the rest text."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return FORMATS[fmt](quiz)
