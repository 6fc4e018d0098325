"""Every export, for any quiz the schema accepts: JSON round-trips exactly, GIFT, QTI and Anki read back as written.

Questions are generated with hostile strings: GIFT's specials and Moodle's own placeholders, XML specials and
``]]>``, HTML, control characters (NUL, ESC, form feed, CR, CRLF, NEL, U+2028), a right-to-left override, emoji
and non-characters, with and without sources. The readers in tests/export_readers.py read each format the way
its importer does (Moodle's GIFT reader, Anki's CSV reader, an XML parser with the QTI structure checked).

Budget (tests/fuzzing.py): a fixed number of examples per test with a deadline (the default tier, a few seconds);
``TA_FUZZ=long`` runs 100 times as many examples with no deadline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from quizgen.export import UNGROUNDED, from_json, to_anki, to_gift, to_json, to_qti, to_text, why, xml_comment_text
from quizgen.schema import (
    BLOOM_LEVELS,
    DIFFICULTIES,
    EXPLANATION_MAX,
    LETTERS,
    OBJECTIVE_MAX,
    OPTION_MAX,
    REASON_MAX,
    STEM_MAX,
    Question,
    Quiz,
    QuizItem,
    QuizMetadata,
    Source,
)
from quizgen.text import clean, is_clean
from tests.export_readers import html_text, read_anki, read_gift, read_qti
from tests.fuzzing import budget

# Pieces that have broken, or could break, one of the formats.
HOSTILE = [
    *"~=#{}:\\<>&\"'[]%/$",
    "]]>",
    "<![CDATA[",
    "--",
    "-->",
    "<br>",
    "&amp;",
    "&#32;",
    "&&058;",
    "&&092;",
    "\\n",
    "[html]",
    "[plain]",
    "%50%",
    "%-5%",
    "//",
    "$CATEGORY:",
    "####",
    "->",
    "0",
    " ",
    "\t",
    "\n",
    "\n\n",
    "\r",
    "\r\n",
    "\f",
    "\v",
    "\x00",
    "\x1b[2J",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9b",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "😀",
    "👩\u200d👩\u200d👧",
    "\U0010fffd",
    "é",
    "ש",
]
PIECES = st.sampled_from(HOSTILE) | st.text(max_size=12)  # a text is one choice to Hypothesis: cheap


def hostile(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Strings of ``min_size``-``max_size`` characters mostly made of hostile pieces."""
    return st.lists(PIECES, max_size=6).map(lambda parts: ("".join(parts) + "x" * min_size)[:max_size])


def sources() -> st.SearchStrategy[Source]:
    """Any Source the schema accepts."""
    return st.builds(
        Source,
        kb=hostile(0, 30),
        doc=hostile(0, 40),
        headings=st.lists(hostile(0, 30), max_size=3).map(tuple),
        start=st.integers(0, 10**9),
        end=st.integers(0, 10**9),
        quote=hostile(1, 120),
    )


@st.composite
def questions(draw: st.DrawFn) -> Question:
    """Any Question the schema accepts, grounded or not, with or without sources for its wrong reasons."""
    answer = draw(st.sampled_from(LETTERS))
    wrong = [letter for letter in LETTERS if letter != answer]
    cited = draw(st.lists(st.sampled_from(wrong), unique=True))
    return Question(
        stem=draw(hostile(10, STEM_MAX)),
        options=[draw(hostile(1, OPTION_MAX)) for _ in LETTERS],
        answer=answer,
        explanation=draw(hostile(1, EXPLANATION_MAX)),
        wrong_reasons={letter: draw(hostile(1, REASON_MAX)) for letter in wrong},
        difficulty=draw(st.sampled_from(DIFFICULTIES)),
        bloom_level=draw(st.sampled_from(BLOOM_LEVELS)),
        objective=draw(hostile(3, OBJECTIVE_MAX)),
        source=draw(st.none() | sources()),
        reason_sources={letter: draw(sources()) for letter in cited},
    )


FINITE = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def quizzes(draw: st.DrawFn) -> Quiz:
    """Any quiz of 1-2 questions, with hostile topics, issues and metadata strings (finite numbers: see below)."""
    items = [
        QuizItem(
            question=draw(questions()),
            verified=draw(st.booleans()),
            attempts=draw(st.integers(1, 10**6)),
            issues=draw(st.lists(hostile(0, 60), max_size=2)),
            seconds=draw(FINITE),
            blind_answer=draw(st.none() | st.sampled_from(LETTERS)),
        )
        for _ in range(draw(st.integers(1, 2)))
    ]
    metadata = QuizMetadata(
        model=draw(hostile(0, 30)),
        seed=draw(st.none() | st.integers()),
        temperature=draw(FINITE),
        seconds=draw(FINITE),
        created=draw(hostile(0, 30)),
        source=draw(st.none() | hostile(0, 60)),
        extra=draw(st.dictionaries(hostile(0, 10), st.none() | st.booleans() | st.integers() | hostile(0, 20))),
    )
    return Quiz(topic=draw(hostile(0, 80)), questions=items, metadata=metadata)


def one(question: Question, topic: str = "topic") -> Quiz:
    """A quiz of the one question (for the regression examples)."""
    return Quiz(topic=topic, questions=[QuizItem(question=question)])


def q(**changes: object) -> Question:
    """A plain question with ``changes`` (for the regression examples)."""
    fields: dict = {
        "stem": "Which method shrinks weights?",
        "options": ["weight decay", "dropout", "early stopping", "bagging"],
        "answer": "A",
        "explanation": "Weight decay adds a penalty on the weights.",
        "wrong_reasons": {"B": "Dropout drops units.", "C": "It stops early.", "D": "It averages models."},
        "objective": "regularization",
    }
    return Question(**{**fields, **changes})


SRC = Source(kb="course", doc="regularization.rst", headings=("Weight decay",), start=0, end=10, quote="Weight decay")


# ---- the cleaning rule --------------------------------------------------------------------------------

XML_CHAR = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


@budget(200)
@given(st.text() | hostile(0, 200))
@example("a\r\nb\rc\fd\x00e\u2028f\x85g\x1b[0m")
def test_clean_leaves_only_what_every_format_holds(text: str) -> None:
    cleaned = clean(text)
    assert clean(cleaned) == cleaned and is_clean(cleaned)
    assert XML_CHAR.fullmatch(cleaned), "a character XML 1.0 cannot hold"
    assert "".join(cleaned.splitlines()) == cleaned.replace("\n", ""), "a line break other than newline"
    assert not any(0x7F <= ord(c) <= 0x9F or (ord(c) < 0x20 and c not in "\t\n") for c in cleaned)
    assert is_clean(text) == (text == cleaned)


def test_clean_keeps_text_and_turns_every_line_break_into_a_newline() -> None:
    assert clean("tab\tRTL \u202eabc 😀 é") == "tab\tRTL \u202eabc 😀 é"
    assert clean("a\r\nb\rc\fd\ve\u2028f\u2029g\x85h") == "a\nb\nc\nd\ne\nf\ng\nh"
    assert clean("\x00nul \x1b[31mred\x7f \x9b\ufffe") == "nul [31mred "


# ---- every format, one generated quiz each -------------------------------------------------------------


def check_json(quiz: Quiz) -> None:
    """JSON is lossless: read back, the quiz is equal, and written again, the text is the same."""
    text = to_json(quiz)
    assert from_json(text) == quiz
    assert to_json(from_json(text)) == text


def check_gift(quiz: Quiz) -> None:
    """Moodle reads each question back: its name, HTML format, stem, key, options and feedback as written."""
    read = read_gift(to_gift(quiz))
    assert len(read) == len(quiz.questions)
    for number, (got, item) in enumerate(zip(read, quiz.questions, strict=True), 1):
        question = item.question
        assert (got.name, got.fmt) == (f"Q{number}", "html")
        assert html_text(got.text) == clean(question.stem)
        assert [a.fraction for a in got.answers] == [float(x == question.answer) for x in LETTERS]
        assert [html_text(a.text) for a in got.answers] == [clean(o) for o in question.options]
        assert [html_text(a.feedback) for a in got.answers] == [clean("\n".join(why(question, x))) for x in LETTERS]
        assert html_text(got.general_feedback) == clean("\n".join(why(question, question.answer)))


def check_qti(quiz: Quiz) -> None:
    """Each QTI item parses as XML, has the structure QTI 2.1 requires, and shows the text written."""
    items = read_qti(to_qti(quiz))
    assert len(items) == len(quiz.questions)
    for got, item in zip(items, quiz.questions, strict=True):
        question = item.question
        assert got.title == clean(question.stem)[:80] and got.prompt == clean(question.stem)
        assert got.choices == [clean(o) for o in question.options] and got.correct == question.answer
        for letter in LETTERS:
            paragraphs = why(question, letter)
            if letter != question.answer:
                paragraphs += why(question, question.answer)
            assert got.feedback[letter] == [clean(p) for p in paragraphs]


def anki_view(text: str) -> str:
    """What a field shows once imported (tabs in our strings become spaces)."""
    return clean(text).replace("\t", " ")


def check_anki(quiz: Quiz) -> None:
    """Anki reads one note of three fields per question, showing the text written, with the tags written."""
    records = read_anki(to_anki(quiz))
    assert len(records) == len(quiz.questions)
    for record, item in zip(records, quiz.questions, strict=True):
        question = item.question
        assert len(record) == 3, record
        front, back, tags = record
        options = "\n".join(f"{x}. {anki_view(o)}" for x, o in zip(LETTERS, question.options, strict=True))
        assert html_text(front) == f"{anki_view(question.stem)}\n\n{options}"
        explained = "\n".join(anki_view(p) for p in why(question, question.answer))
        assert html_text(back) == f"<b>{question.answer}. {anki_view(question.correct_option)}</b>\n\n{explained}"
        status = "verified" if item.verified else "unverified"
        assert tags.split()[1:] == [question.difficulty, question.bloom_level, status]
        assert tags.split()[0].startswith("quizgen::")


def check_text(quiz: Quiz) -> None:
    """The text output has no control character, one numbered entry and one source line per question."""
    text = to_text(quiz)
    assert is_clean(text)
    lines = text.split("\n")
    assert len([line for line in lines if re.match(r"\d+\. ", line)]) == len(quiz.questions)
    sources = [line for line in lines if line.startswith("   Source: ") or line == f"   {UNGROUNDED}"]
    assert len(sources) == len(quiz.questions)
    for line, item in zip(sources, quiz.questions, strict=True):
        assert (line == f"   {UNGROUNDED}") == (not item.question.grounded)


# What the fuzzing found in the exporters as they were (each its minimal example, shrunk by Hypothesis), then the
# cases found by reading the importers' source, and hand-picked hostile cases each format must hold.
TINY = {
    "stem": "xxxxxxxxxx",
    "options": ["x", "x", "x", "x"],
    "explanation": "x",
    "wrong_reasons": {"B": "x", "C": "x", "D": "x"},
    "objective": "xxx",
}
REGRESSIONS = [
    one(q(**{**TINY, "stem": "&&058;xxxxxxxxxx"})),  # GIFT: Moodle turned its placeholder into ":"
    one(q(**{**TINY, "options": ["x", "x", "x", "%50%x"]})),  # GIFT: a wrong option read as 50% partial credit
    one(q(**TINY), topic="\x0c"),  # QTI: a form feed (issue 19), here in the topic: the manifest was not XML
    one(q(**{**TINY, "explanation": "\rx"})),  # Anki: a bare CR ended the note in the middle of its back
    # GIFT: a leading "[name]" is a text format to Moodle, a blank option is trimmed to nothing.
    one(q(stem="[markdown] is *this* the stem?", options=["[html]<b>", " %50% wrong", "%-5%x", "   "])),
    # QTI: "---" in the topic made a comment with "--" in it (not well-formed).
    one(q(stem="Is a\fform feed\x00 ok]]>?", options=["<a>", "&", "]]>", "x\x1b"]), topic="a---b--"),
    # Anki: a line that starts with "#" is a comment to Anki's reader: the note vanished.
    one(q(stem="# not a comment, a stem?"), topic="# topic"),
    # text: a stem whose lines looked like a question or a source line; a terminal escape sequence.
    one(q(stem="A stem\n2. that fakes a question?\n   Source: and a source")),
    one(q(stem="Clears the screen \x1b[2J?", source=SRC)),
    # hand-picked: every special of every format, sources on the key and on wrong reasons.
    one(q(stem="Uses &&092; and \\n and &#32; literally?", options=["a\tb ", "\tc", "0", "//x"])),
    one(q(stem="Why is ~x = #y {z}: yes?", explanation="####", wrong_reasons={"B": "#", "C": "=", "D": "~"})),
    one(q(stem="A stem\nwith\n\nblank lines and a } brace?", source=SRC, reason_sources={"C": SRC})),
    one(q(stem='Carriage\rreturn and \u2028 and "quotes"?', options=['"x', "a\tb", "\r\n", "'"])),
    one(q(stem="Form\ffeed\x00 and \u2028?", source=SRC, reason_sources={"B": SRC}), topic="-"),
]


def with_regressions(test: Callable[[Quiz], None]) -> Callable[[Quiz], None]:
    """``test`` with every quiz of :data:`REGRESSIONS` as an explicit example."""
    for quiz in REGRESSIONS:
        test = example(quiz)(test)
    return test


@budget(30)  # a generated quiz costs ~0.1 s (0.3 s at load 12): 30 keep this test near 5-10 s
@with_regressions
@given(quizzes())
def test_every_format_reads_back_what_was_written(quiz: Quiz) -> None:
    # One generated quiz for all five formats: generating it costs more than the checks.
    check_json(quiz)
    check_gift(quiz)
    check_qti(quiz)
    check_anki(quiz)
    check_text(quiz)


def test_non_finite_numbers_never_make_an_unreadable_quiz() -> None:
    try:
        quiz = Quiz(topic="t", metadata=QuizMetadata(seconds=math.inf))
    except ValidationError:
        return  # refused where it is made: fine
    assert from_json(to_json(quiz)) == quiz


def test_xml_comment_text_never_holds_two_hyphens() -> None:
    for topic in ("a--b", "a---b", "----", "-", "x-\x00-y"):
        assert "--" not in xml_comment_text(topic), topic


def test_the_schema_cleans_control_characters_a_model_may_write() -> None:
    from quizgen.schema import Question

    q = Question(
        stem="What\fdoes dropout\x00 do?\r\nAsk it.",
        options=["A\x0b", "B", "C", "D"],
        answer="A",
        explanation="Because\u2028it drops.",
        wrong_reasons={"B": "b", "C": "c", "D": "d"},
        objective="Recall dropout",
    )
    assert q.stem == "What\ndoes dropout do?\nAsk it." and q.options[0] == "A\n"
    assert q.explanation == "Because\nit drops."
