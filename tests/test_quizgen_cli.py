"""``ta quiz`` and ``ta quiz-eval`` in-process: one JSON document on stdout, --take, exports, clear errors."""

from __future__ import annotations

import io
import itertools
import json
import re
import zipfile

import pytest

from quizgen.export import from_json
from tutor.cli import main
from tutor.models import FakeModel

STEMS = [
    "What does the learning rate control?",
    "Which sign shows that training diverges?",
    "How does momentum change an update?",
    "Why is the data shuffled every epoch?",
    "When should early stopping end training?",
]


def fake_model() -> FakeModel:
    counter = itertools.count()

    def respond(messages, constraint) -> str:
        if '"plan"' in json.dumps(constraint.schema):
            return json.dumps({"plan": {"objectives": ["Explain the learning rate", "Spot divergence"]}})
        stem = STEMS[next(counter) % len(STEMS)]
        question = {
            "stem": stem,
            "options": ["Step size of updates", "Number of hidden layers", "Dataset size", "Example order"],
            "answer": "A",
            "explanation": "The learning rate scales every gradient step.",
            "wrong_reasons": ["first wrong reason", "second wrong reason", "third wrong reason"],
        }
        return json.dumps({"question": question})

    return FakeModel(responder=respond)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr("quizgen.cli.load_from_args", lambda args: fake_model())


def test_json_format_prints_exactly_one_document(fake, capsys) -> None:
    assert main(["quiz", "--ungrounded", "gradient", "descent", "-n", "3", "--format", "json", "--seed", "1"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)  # the whole of stdout is one JSON document
    assert doc["topic"] == "gradient descent" and len(doc["questions"]) == 3
    assert from_json(out).questions[0].question.stem == STEMS[0]
    assert "[1/3]" in err and "[3/3]" in err, "progress goes to stderr"


@pytest.mark.parametrize("fmt", ["gift", "anki", "text"])
def test_text_formats_to_stdout(fake, capsys, fmt) -> None:
    assert main(["quiz", "--ungrounded", "overfitting", "-n", "2", "--format", fmt, "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert STEMS[0] in out or STEMS[0].replace("?", "") in out


def test_qti_needs_an_output_file_and_writes_a_zip(fake, capsys, tmp_path) -> None:
    assert main(["quiz", "--ungrounded", "overfitting", "-n", "2", "--format", "qti"]) == 2
    assert "pass -o quiz.zip" in capsys.readouterr().err
    path = tmp_path / "quiz.zip"
    assert (
        main(["quiz", "--ungrounded", "overfitting", "-n", "2", "--format", "qti", "-o", str(path), "--seed", "3"]) == 0
    )
    with zipfile.ZipFile(path) as archive:
        assert "imsmanifest.xml" in archive.namelist() and "items/q2.xml" in archive.namelist()


def test_take_reads_answers_from_stdin(fake, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("x\nC\nB\nq\n"))
    taken = tmp_path / "taken.json"
    argv = ["quiz", "--ungrounded", "overfitting", "-n", "3", "--take", "--seed", "4", "-o", str(taken)]
    assert main([*argv, "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert "Please answer A, B, C or D" in out, "an invalid answer is asked again"
    assert out.count("Your answer:") == 4
    keys = [item.question.answer for item in from_json(taken.read_text()).questions][:2]
    # The feedback to each answer, in order, is what the saved key says it should be.
    given = ["C", "B"]
    want = ["Correct." if g == k else f"you chose {g} / The answer is {k}" for g, k in zip(given, keys, strict=True)]
    assert len({w[:9] for w in want}) == 2, f"seed 4 should give one right and one wrong answer: keys {keys}"
    said = re.finditer(r"Correct\.|you chose ([ABCD]) \(.*\n(The answer is [ABCD]) \(", out)
    assert [m[0] if m[1] is None else f"you chose {m[1]} / {m[2]}" for m in said] == want
    assert out.count("Source: ") == 2, "each answer's feedback names its source (here: ungrounded)"
    right = sum(g == k for g, k in zip(given, keys, strict=True))
    assert f"Score: {right}/3 correct (2 answered)" in out


def test_take_saves_the_questions_written_with_their_metadata(fake, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("A\nq\n"))
    path = tmp_path / "taken.json"
    assert (
        main(
            [
                "quiz",
                "--ungrounded",
                "overfitting",
                "-n",
                "3",
                "--take",
                "--seed",
                "5",
                "-o",
                str(path),
                "--format",
                "json",
            ]
        )
        == 0
    )
    quiz = from_json(path.read_text())
    assert len(quiz.questions) == 2, "the question on screen when the student quit is saved too"
    assert quiz.metadata.extra["attempts"] == [item.attempts for item in quiz.questions]
    assert quiz.metadata.extra["requested"] == 3
    assert quiz.metadata.seed == 5 and quiz.metadata.temperature == 0.4


def test_take_ends_cleanly_at_end_of_input(fake, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["quiz", "--ungrounded", "overfitting", "-n", "2", "--take"]) == 0
    assert "Score: 0/1 correct (0 answered)" in capsys.readouterr().out, "EOF stops the quiz: nothing more is written"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["quiz", "   "], "topic is empty"),
        (["quiz", "x" * 50_000], "50,000 characters"),
        (["quiz", "overfitting", "-n", "0"], "between 1 and 50"),
        (["quiz", "overfitting", "-n", "1000"], "between 1 and 50"),
        (["quiz", "overfitting", "--source", "/no/such/notes.txt"], "/no/such/notes.txt: no such file"),
        (["quiz", "--ungrounded", "overfitting", "--source", "/no/such/notes.txt"], "no file at /no/such/notes.txt"),
        (["quiz", "overfitting", "--kb", "nosuchkb"], "nosuchkb"),
        (["quiz", "sourdough bread baking"], "has nothing on 'sourdough bread baking'"),
        (["quiz", "overfitting", "--temperature", "5"], "temperature"),
    ],
)
def test_bad_input_is_one_clear_line(fake, capsys, argv, message) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_binary_and_empty_source_files(fake, capsys, tmp_path) -> None:
    binary = tmp_path / "notes.pdf"
    binary.write_bytes(b"%PDF-1.4\x00\x01\x02\xff")
    assert main(["quiz", "--ungrounded", "overfitting", "--source", str(binary)]) == 2
    assert "binary file" in capsys.readouterr().err
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 notes".encode("latin-1"))
    assert main(["quiz", "--ungrounded", "overfitting", "--source", str(latin)]) == 2
    assert "UTF-8" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert main(["quiz", "--ungrounded", "overfitting", "--source", str(empty)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_source_file_is_quizzed_on(fake, capsys, tmp_path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\nThe learning rate sets the step size.\n")
    assert main(["quiz", "--ungrounded", "learning rate", "-n", "1", "--source", str(notes), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"]["source"].startswith("# Notes")


def test_quiz_eval_prints_the_report(fake, capsys, tmp_path) -> None:
    topics = tmp_path / "topics.txt"
    topics.write_text("# two topics\noverfitting\n\ngradient descent\n")
    report = tmp_path / "report.json"
    assert main(["quiz-eval", "--ungrounded", "--topics", str(topics), "-n", "2", "-o", str(report)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 + 1, "header, one row per topic, total"
    # questions/asked, grounded (none: --ungrounded), checks passed
    assert "| overfitting | 2/2 | 0% | 100% |" in out and "**total** | 4/4 | 0% | 100% |" in out
    saved = json.loads(report.read_text())
    assert saved["reports"][-1]["questions"] == 4 and saved["reports"][-1]["crashes"] == 0
    assert len(saved["quizzes"]) == 2


def test_quiz_eval_needs_a_topics_file(fake, capsys, tmp_path) -> None:
    assert main(["quiz-eval", "--topics", str(tmp_path / "none.txt")]) == 2
    assert "no topics file" in capsys.readouterr().err
