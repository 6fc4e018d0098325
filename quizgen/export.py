"""Quiz formats: JSON (lossless, and read back), Moodle GIFT, QTI 2.1 (a zip), Anki TSV, plain text.

``dumps(quiz, fmt)`` dispatches on a name in :data:`FORMATS`; QTI is bytes (a zip), the rest text.

Every format shows where each question comes from: "Source: doc › heading" after the explanation (GIFT and
QTI feedback, the back of an Anki card, the text output), and after each wrong option's reason when that reason
is quoted from a passage of its own. JSON keeps the :class:`~quizgen.schema.Source` records whole.

JSON is exact for any question the schema accepts; the other formats pass every string through
:func:`quizgen.text.clean` first (no control characters but tab and newline), so any question gives a file
its importer reads: tests/test_fuzz_export.py holds each format to that with generated questions.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Callable
from xml.etree import ElementTree as ET

from quizgen.schema import LETTERS, Question, Quiz, QuizItem, Source
from quizgen.text import clean
from tutor.errors import InputError

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
        InputError: when the text is not a quiz, saying where it breaks (a ``ValueError`` too).
    """
    from pydantic import ValidationError

    try:
        return Quiz.model_validate_json(text)
    except ValidationError as exc:
        raise InputError(f"not a quiz JSON document: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc


# ---- sources -------------------------------------------------------------------------------------

UNGROUNDED = "(ungrounded: written by the model without a source)"


def source_line(source: Source | None) -> list[str]:
    """``["Source: doc › heading"]``, or nothing for a string written without a source."""
    return [] if source is None else [f"Source: {source.cite()}"]


def why(question: Question, letter: str) -> list[str]:
    """The feedback for choosing ``letter``, as paragraphs: the explanation or the option's reason, then its source."""
    if letter == question.answer:
        return [question.explanation, *source_line(question.source)]
    return [question.wrong_reasons[letter], *source_line(question.reason_sources.get(letter))]  # type: ignore[index]


# ---- Moodle GIFT -----------------------------------------------------------------------------------


def gift_escape(text: str) -> str:
    r"""Escape text for GIFT: a backslash before ``\ ~ = # { } :``; newlines as ``\n`` (blank lines end questions)."""
    text = text.replace("\\", "\\\\")
    for ch in GIFT_SPECIAL:
        text = text.replace(ch, "\\" + ch)
    return text.replace("\r\n", "\n").replace("\n", "\\n")


def gift_text(text: str) -> str:
    """A GIFT field in HTML format (the question says ``[html]``): what Moodle shows is exactly ``clean(text)``.

    Moodle's reader trims spaces and tabs around every field, takes a leading ``[name]`` for a text format and a
    leading ``%n%`` on a wrong answer for its weight, and GIFT has no escape for these: as HTML, a character
    reference keeps each literal. HTML also makes Moodle's own ``&&035;`` placeholders unreachable (``&`` is
    ``&amp;``) and shows ``<`` as itself.
    """
    body = html.escape(clean(text), quote=False).replace("\n", "<br>")
    body = re.sub(r"\A[ \t\[%]", _char_ref, body)
    body = re.sub(r"[ \t]\Z", _char_ref, body)
    return gift_escape(body)


def _char_ref(match: re.Match[str]) -> str:
    return f"&#{ord(match.group())};"


def to_gift(quiz: Quiz) -> str:
    """Moodle GIFT: one multiple-choice question per block, per-option feedback, the explanation as general feedback.

    Each feedback ends with "Source: doc › heading" where its text is quoted from the course.
    """
    topic = " ".join(clean(quiz.topic).split("\n"))
    blocks = [f"// {topic}: {len(quiz.questions)} questions written by quizgen"]
    for i, item in enumerate(quiz.questions, 1):
        blocks.append(_gift_question(i, item))
    return "\n\n".join(blocks) + "\n"


def _gift_question(number: int, item: QuizItem) -> str:
    q = item.question
    lines = [f"::Q{number}::[html]{gift_text(q.stem)} {{"]
    for letter, option in zip(LETTERS, q.options, strict=True):
        mark = "=" if letter == q.answer else "~"
        lines.append(f"  {mark}{gift_text(option)}#{gift_text(chr(10).join(why(q, letter)))}")
    lines.append(f"  ####{gift_text(chr(10).join(why(q, q.answer)))}")
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
    """One ``assessmentItem``: a single-choice interaction, scored 1/0, with feedback per chosen option.

    The feedback for a wrong option is its reason, then the explanation, each a ``<p>`` followed by a
    ``<p>Source: ...</p>`` where it is quoted from the course. Strings are :func:`~quizgen.text.clean`: XML 1.0
    cannot hold most control characters, even escaped.
    """
    q = item.question
    stem = clean(q.stem)
    root = ET.Element(
        "assessmentItem",
        {
            "xmlns": QTI_NS,
            "identifier": identifier,
            "title": stem[:80],
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
    ET.SubElement(interaction, "prompt").text = stem
    for letter, option in zip(LETTERS, q.options, strict=True):
        ET.SubElement(interaction, "simpleChoice", {"identifier": letter}).text = clean(option)
    root.append(_response_processing())
    for letter in LETTERS:
        feedback = ET.SubElement(
            root, "modalFeedback", {"outcomeIdentifier": "FEEDBACK", "identifier": letter, "showHide": "show"}
        )
        for paragraph in why(q, letter) if letter == q.answer else [*why(q, letter), *why(q, q.answer)]:
            ET.SubElement(feedback, "p").text = clean(paragraph)
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
    manifest.append(ET.Comment(f" {xml_comment_text(quiz.topic)} "))
    return manifest


def xml_comment_text(text: str) -> str:
    """``text`` as an XML comment may hold it: no ``--`` (a space between two hyphens), no control characters."""
    return re.sub("-(?=-)", "- ", clean(text))


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# ---- Anki ------------------------------------------------------------------------------------------


def to_anki(quiz: Quiz) -> str:
    """Anki-importable TSV (File > Import): front = stem and options, back = answer, explanation, source; tags."""
    lines = ["#separator:tab", "#html:true", "#columns:Front\tBack\tTags", "#tags column:3"]
    topic_tag = "quizgen::" + re.sub(r"[^\w-]+", "_", clean(quiz.topic)).strip("_")
    for item in quiz.questions:
        q = item.question
        options = "<br>".join(f"{letter}. {_anki_text(o)}" for letter, o in zip(LETTERS, q.options, strict=True))
        front = f"{_anki_text(q.stem)}<br><br>{options}"
        back = f"<b>{q.answer}. {_anki_text(q.correct_option)}</b><br><br>" + "<br>".join(
            _anki_text(p) for p in why(q, q.answer)
        )
        tags = " ".join([topic_tag, q.difficulty, q.bloom_level, "verified" if item.verified else "unverified"])
        lines.append("\t".join(_anki_field(f) for f in (front, back, tags)))
    return "\n".join(lines) + "\n"


def _anki_text(text: str) -> str:
    # Anki's reader ends a note at a newline or a bare CR and a field at a tab; HTML has its own line break.
    return html.escape(clean(text)).replace("\t", " ").replace("\n", "<br>")


def _anki_field(field: str) -> str:
    # Anki's reader skips a line that starts with "#" as a comment: the note would vanish.
    return "&#35;" + field[1:] if field.startswith("#") else field


# ---- plain text ------------------------------------------------------------------------------------


def to_text(quiz: Quiz) -> str:
    """A readable quiz with its answer key, each question's source (or that it has none) and verification status.

    Strings are :func:`~quizgen.text.clean` (no terminal escape sequences) and their line breaks indented, so a
    line that starts a question or an option always is one.
    """
    out = [f"Quiz: {_line(quiz.topic)} ({len(quiz.questions)} questions, {quiz.verified_count} verified)", ""]
    for i, item in enumerate(quiz.questions, 1):
        q = item.question
        status = "verified" if item.verified else "UNVERIFIED: " + "; ".join(item.issues)
        out.append(f"{i}. {_line(q.stem)}  [{q.difficulty}, {q.bloom_level}; {_line(status)}]")
        out.extend(f"   {letter}. {_line(option)}" for letter, option in zip(LETTERS, q.options, strict=True))
        out.append(f"   Answer: {q.answer}. {_line(q.explanation)}")
        out.append(f"   Source: {_line(q.source.cite())}" if q.source is not None else f"   {UNGROUNDED}")
        out.append("")
    return "\n".join(out)


def _line(text: str) -> str:
    return clean(text).replace("\n", "\n      ")


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
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return FORMATS[fmt](quiz)
