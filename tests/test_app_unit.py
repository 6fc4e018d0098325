"""The app's seams as pure functions, and the page's wiring (no server; a scripted model where one is needed)."""

from __future__ import annotations

import pytest

import app
import app_serve
from quizgen import QuizRequest, grade, schema
from quizgen.grade import QuizSession, feedback_markdown, option_choices, question_markdown, score_markdown
from quizgen.schema import Quiz, Source
from tutor.errors import InputError
from tutor.knowledge import COURSE, KnowledgeBase, KnowledgeError
from tutor.tutors import NO_KB, Tutors, add_notes, added_text, choices, pick

NOTES = """# Regularization

## Penalties

**L1 regularization** is a penalty that adds the sum of the absolute values of the weights to the loss.
**L2 regularization** is a penalty that adds the sum of the squared weights to the loss.
**Weight decay** is a technique that shrinks every weight by a small fraction at each update step.

## Other techniques

**Dropout** is a regularization technique that randomly switches off a fraction of a layer's units during training.
**Early stopping** is a technique that halts training when the error on a validation set starts to rise.
**Data augmentation** is a technique that enlarges the training set with modified copies of existing examples.
**Batch normalization** is a technique that rescales the activations of a layer using statistics of the batch.
"""


@pytest.fixture
def kb_home(tmp_path, monkeypatch):
    """A knowledge.db of this test's own (the course is listed there, and indexed only if opened)."""
    monkeypatch.setenv("TA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def notes(tmp_path):
    path = tmp_path / "upload" / "regularization.md"  # as Gradio keeps an upload: its own name, in a folder
    path.parent.mkdir()
    path.write_text(NOTES, encoding="utf-8")
    return path


class EchoTutor:
    """Streams the question back word by word and records the history it was given."""

    def __init__(self) -> None:
        self.histories: list = []

    def stream(self, question: str, history=None):
        if not question.strip():
            raise InputError("the question is empty: type a question")  # as the real tutors check
        self.histories.append(history)
        for word in question.split():
            yield word + " "


class PriorityTutor:
    """Streams the priority its model calls would get, twice (the stream steps on a thread of its own)."""

    def stream(self, question: str, history=None):
        from tutor.models import batching

        for _ in range(2):
            yield f"{batching._PRIORITY.get()} "


def test_a_chat_reply_runs_its_model_calls_ahead_of_quizzes():
    from tutor.models import batching

    assert list(app.stream_reply(PriorityTutor(), "What is dropout?", [])) == [
        f"{batching.INTERACTIVE} ",
        f"{batching.INTERACTIVE} {batching.INTERACTIVE} ",
    ]
    assert batching._PRIORITY.get() == batching.BACKGROUND, "the setting ends with the reply"


def test_stream_reply_grows_and_turns_bad_input_into_a_page_error():
    import gradio as gr

    tutor = EchoTutor()
    history = [{"role": "user", "content": [{"type": "text", "text": "earlier"}]}]
    assert list(app.stream_reply(tutor, "one two", history)) == ["one ", "one two "]
    assert tutor.histories[0] == [{"role": "user", "content": "earlier"}]
    with pytest.raises(gr.Error, match="empty"):
        list(app.stream_reply(tutor, "  ", []))


def test_a_bug_in_a_tutor_keeps_its_traceback_instead_of_becoming_a_page_message():
    import gradio as gr

    class BrokenTutor:
        def stream(self, question: str, history=None):
            yield "a"
            raise ValueError("a bug of ours, not the student's mistake")

    with pytest.raises(ValueError, match="a bug of ours") as raised:
        list(app.stream_reply(BrokenTutor(), "q", []))
    assert not isinstance(raised.value, gr.Error)


def test_the_results_tab_lists_runs_by_name_and_a_bad_pick_is_a_message_on_the_page(tmp_path):
    import gradio as gr

    (tmp_path / "runs" / "arc-letter").mkdir(parents=True)
    (tmp_path / "runs" / "arc-letter" / "config.json").write_text("{}")  # a run that has started
    demo = app.build_app(EchoTutor(), None, runs_dir=tmp_path / "runs")
    picker = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "Runs")
    assert [value for _, value in picker.choices] == ["arc-letter"]
    compare = next(fn.fn for fn in demo.fns.values() if fn.name == "show")
    with pytest.raises(gr.Error, match="pick one or more runs first"):
        compare([])
    with pytest.raises(gr.Error, match="Refresh and pick from the list"):
        compare(["../runs/arc-letter"])


def test_an_empty_session_shows_nothing_and_rejects_answers():
    session = QuizSession(Quiz(topic=""))
    with pytest.raises(ValueError, match="no questions yet"):
        session.answer(0, "A")
    assert question_markdown(session, 0).startswith("*No quiz yet")
    assert option_choices(session, 0) == [] and score_markdown(session) == ""


def test_every_model_event_shares_one_lane_and_the_queue_is_bounded():
    demo = app.build_app(EchoTutor(), None, queue_max=5)
    fns = list(demo.fns.values())
    named = {fn.api_name: fn for fn in fns if fn.api_visibility == "public"}
    assert set(named) == {"chat", "quiz", "answer"}, f"public API: {sorted(named)}"
    model_fns = [fn for fn in fns if fn.concurrency_id == app.MODEL_LANE]
    # The two chat triggers on the page, /chat and /quiz (the quiz tab is off without an agent).
    assert len(model_fns) == 4, [fn.name for fn in model_fns]
    assert all(fn.concurrency_limit == 1 for fn in model_fns)
    assert named["answer"].concurrency_id != app.MODEL_LANE, "grading must not wait for the model"
    assert demo._queue.max_size == 5


def test_chats_and_quizzes_have_lanes_as_wide_as_the_model_batches(monkeypatch):
    monkeypatch.delenv(app.LANES_ENV, raising=False)
    demo = app.build_app(EchoTutor(), None, model_concurrency=4)
    lanes = {(fn.api_name, fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values()}
    assert ("chat", f"{app.MODEL_LANE}-chat", 4) in lanes and ("quiz", f"{app.MODEL_LANE}-quiz", 4) in lanes
    chat_events = {fn.concurrency_id for fn in demo.fns.values() if fn.fn is not None and fn.fn.__name__ == "respond"}
    assert chat_events == {f"{app.MODEL_LANE}-chat"}, "the chat tab's events use the chat lane, not the quizzes'"
    monkeypatch.setenv(app.LANES_ENV, "1")  # the one-lane build, for scripts/app_load.py --compare
    demo = app.build_app(EchoTutor(), None, model_concurrency=4)
    model_events = [fn for fn in demo.fns.values() if str(fn.concurrency_id).startswith(app.MODEL_LANE)]
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in model_events} == {(app.MODEL_LANE, 1)}
    assert {"chat", "quiz"} <= {fn.api_name for fn in model_events}
    monkeypatch.setenv(app.LANES_ENV, "0")
    with pytest.raises(InputError, match="at least 1"):
        app.build_app(EchoTutor(), None)


def test_quiz_tab_degrades_with_a_clear_message_without_an_agent():
    demo = app.build_app(EchoTutor(), None)
    texts = [str(block.value) for block in demo.blocks.values() if type(block).__name__ == "Markdown"]
    assert any("Quizzes are unavailable" in t for t in texts)


def sample_session(n: int = 2) -> QuizSession:
    """A finished session holding real quizgen items (written by hand: grading and export need no model)."""
    question = schema.Question(
        stem="Which loss is usual for classification?",
        options=["Mean squared error", "Cross-entropy", "Hinge on pixels", "L1 on labels"],
        answer="B",
        explanation="Cross-entropy scores predicted class probabilities.",
        wrong_reasons={"A": "MSE suits regression.", "C": "Not a standard loss.", "D": "Labels are classes."},
        objective="choose a classification loss",
    )
    items = [
        schema.QuizItem(question=question, verified=True),
        schema.QuizItem(question=question, verified=False, issues=["verification: the model chose A"]),
    ][:n]
    return QuizSession(Quiz(topic="loss functions", questions=items), requested=n)


def test_the_page_grades_through_quizgen_and_keeps_the_score():
    session = sample_session()
    right = session.answer(0, "B")
    assert right.correct and right.right_letter == "B" and right.why_wrong is None
    wrong = session.answer(1, "A")
    assert not wrong.correct and wrong.why_wrong == "MSE suits regression."
    assert session.score == 1
    assert score_markdown(session) == "### Final score: 1 / 2"
    assert "Correct!" in feedback_markdown(session, 0) and "B. Cross-entropy" in feedback_markdown(session, 0)
    text = feedback_markdown(session, 1)
    assert "right answer is B. Cross-entropy" in text and "MSE suits regression." in text
    with pytest.raises(ValueError, match="A-D"):
        session.answer(0, "E")


def test_the_score_is_final_only_once_the_quiz_is_written_and_answered():
    item = sample_session(1).quiz.questions[0]
    session = QuizSession(Quiz(topic="loss functions"), requested=3)
    filling = session.fill([item])
    assert next(filling) is item and session.total == 1
    session.answer(0, "B")
    assert session.writing and score_markdown(session) == "**Score:** 1 / 1 answered (1 of 3 questions written)"
    assert list(filling) == [] and not session.writing
    assert score_markdown(session) == "### Final score: 1 / 1"


def test_write_quiz_fills_a_session_from_the_agent_and_says_how_it_was_made():
    from quizgen import QuizAgent
    from tests.test_quizgen_cli import fake_model

    request = QuizRequest("overfitting", n=3, seed=2, grounded=False)
    steps = [(s, len(s.quiz), s.writing) for s in app.write_quiz(QuizAgent(fake_model()), request)]
    assert [(n, writing) for _, n, writing in steps] == [(1, True), (2, True), (3, True), (3, False)]
    assert len({id(s) for s, _, _ in steps}) == 1, "one session, filled in place (the page's gr.State)"
    session = steps[-1][0]
    assert session.requested == 3 and session.quiz.topic == "overfitting"
    attempts = [item.attempts for item in session.quiz.questions]
    assert session.quiz.metadata.extra["attempts"] == attempts, "metadata describes the questions written"
    assert session.quiz.metadata.seed == 2 and session.quiz.metadata.model == "fake"


def test_a_bad_quiz_request_is_a_message_on_the_page():
    import gradio as gr

    assert app.quiz_request(" over  fitting ", 3.0, " easy ").topic == "over fitting"
    assert app.quiz_request("overfitting", None, None).n == 10, "the API's defaults"
    with pytest.raises(gr.Error, match="topic is empty"):
        app.quiz_request("  ", 3, "easy")
    with pytest.raises(gr.Error, match="between 1 and"):
        app.quiz_request("overfitting", 500, "easy")


def test_unverified_questions_are_marked_and_options_lettered():
    session = sample_session()
    assert "Unverified" not in question_markdown(session, 0)
    assert "Unverified" in question_markdown(session, 1) and "the model chose A" in question_markdown(session, 1)
    assert question_markdown(session, 1).startswith("**Question 2 of 2**")
    assert [letter for _, letter in option_choices(session, 0)] == ["A", "B", "C", "D"]
    assert option_choices(session, 0)[1][0] == "B. Cross-entropy"


def test_export_writes_each_format_and_json_round_trips(tmp_path):
    import zipfile

    from quizgen import export

    session = sample_session()
    paths = {fmt: grade.save_quiz(session, fmt, tmp_path) for fmt in grade.DOWNLOADS}
    quiz = export.from_json(open(paths["json"]).read())
    assert quiz.topic == "loss functions" and len(quiz.questions) == 2 and quiz.questions[1].verified is False
    assert zipfile.is_zipfile(paths["qti"])
    assert "Cross-entropy" in open(paths["gift"]).read() and "Cross-entropy" in open(paths["anki"]).read()
    with pytest.raises(ValueError, match="unknown format"):
        grade.save_quiz(session, "../../etc/passwd", tmp_path)
    with pytest.raises(ValueError, match="generate one first"):
        grade.save_quiz(QuizSession(Quiz(topic="")), "json", tmp_path)


def test_stream_reply_gives_the_tutor_only_the_recent_normalised_history():
    from tutor.explain import HISTORY_MESSAGES

    turns = [
        {"role": r, "content": [{"type": "text", "text": f"{r}{i}"}]} for i in range(6) for r in ("user", "assistant")
    ]
    tutor = EchoTutor()
    list(app.stream_reply(tutor, "q", turns))
    plain = [{"role": t["role"], "content": t["content"][0]["text"]} for t in turns]
    assert tutor.histories[0] == plain[-HISTORY_MESSAGES:]


def serve_args(monkeypatch, env: dict[str, str], argv: list[str]):
    import argparse

    for name in ("TA_MODEL", "TA_HOST", "SPACE_ID", "PORT", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser(prog="ta")
    app_serve.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_serve_flags_defaults_and_environment_fallbacks(monkeypatch):
    args = serve_args(monkeypatch, {}, [])
    assert (args.model, args.host, args.port, args.queue_max) == ("default", "127.0.0.1", 7860, app.QUEUE_MAX)
    assert args.func is app_serve.cmd_serve
    space = {"SPACE_ID": "user/ml-tutor", "PORT": "8080", "TA_MODEL": "model.gguf"}
    args = serve_args(monkeypatch, space, [])
    assert (args.model, args.host, args.port) == ("model.gguf", "0.0.0.0", 8080), "a Space binds every address"
    args = serve_args(monkeypatch, {**space, "TA_HOST": "10.0.0.1", "GRADIO_SERVER_PORT": "9"}, ["--port", "7000"])
    assert (args.host, args.port) == ("10.0.0.1", 7000), "a flag beats the environment"
    assert serve_args(monkeypatch, {"GRADIO_SERVER_PORT": "7999"}, []).port == 7999


def test_serve_refuses_bad_settings_before_loading_a_model(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        serve_args(monkeypatch, {"PORT": "eighty"}, [])
    assert "invalid int value: 'eighty'" in capsys.readouterr().err
    args = serve_args(monkeypatch, {}, ["--queue-max", "0"])
    monkeypatch.setattr(app_serve, "load_from_args", lambda args: pytest.fail("the model loaded"))
    with pytest.raises(app_serve.CLIError, match="--queue-max must be at least 1"):
        app_serve.cmd_serve(args)
    from tutor.optimize import ProgramFileError

    args = serve_args(monkeypatch, {}, ["--program", "no-such-program.json"])
    assert [str(p) for p in args.program] == ["no-such-program.json"]
    with pytest.raises(ProgramFileError, match=r"no program file at no-such-program\.json"):
        app_serve.cmd_serve(args)  # a bad program file fails before the model loads


def test_importing_the_page_loads_neither_gradio_nor_dspy_and_python_app_py_takes_serve_flags():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(app.__file__).parent
    code = "import sys, app; assert not {'gradio', 'dspy'} & set(sys.modules), 'imported at registration'"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "app.py", "--help"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--queue-max" in done.stdout and "--model" in done.stdout, done.stderr


# ---------------------------------------------------------------- knowledge bases and sources on the page


class NamedTutor:
    """A scripted tutor that says which knowledge base it answers from."""

    def __init__(self, name: str) -> None:
        self.name = name

    def stream(self, question: str, history=None):
        yield f"[{self.name}] {question}"


def grounded_question() -> schema.Question:
    """A question as the grounded agent writes it: the explanation and a wrong option's reason quote the course."""
    source = Source(
        kb="mynotes",
        doc="regularization.md",
        headings=("Regularization", "Other techniques"),
        start=400,
        end=509,
        quote="Dropout is a regularization technique that randomly switches off a fraction of a layer's units.",
    )
    reason = Source(
        kb="mynotes",
        doc="regularization.md",
        headings=("Regularization", "Penalties"),
        start=30,
        end=130,
        quote="L1 regularization is a penalty that adds the sum of the absolute values of the weights to the loss.",
    )
    return schema.Question(
        stem="Which regularization technique randomly switches off a fraction of a layer's units?",
        options=["Weight decay", "Dropout", "L1 regularization", "Early stopping"],
        answer="B",
        explanation=source.quote,
        wrong_reasons={"A": "Weight decay shrinks weights.", "C": reason.quote, "D": "Early stopping halts training."},
        objective="name the technique",
        source=source,
        reason_sources={"C": reason},
    )


def test_feedback_quotes_the_course_sentence_and_names_its_source_or_says_it_is_ungrounded():
    question = grounded_question()
    ungrounded = sample_session(1).quiz.questions[0]
    session = QuizSession(Quiz(topic="dropout", questions=[schema.QuizItem(question=question), ungrounded]))
    assert session.answer(0, "B").source == "regularization.md › Regularization › Other techniques"
    text = feedback_markdown(session, 0)
    assert "Correct!" in text and f"> {question.source.quote}" in text
    assert text.count(question.source.quote) == 1, "the explanation is the quoted sentence: shown once"
    assert "**Source:** regularization.md › Regularization › Other techniques" in text
    session.answer(0, "C")
    text = feedback_markdown(session, 0)
    assert "right answer is B. Dropout" in text and "**Source:** regularization.md" in text
    assert "(Source: regularization.md › Regularization › Penalties)" in text, "the wrong option's reason is cited"
    assert "Ungrounded" not in question_markdown(session, 0)

    assert session.answer(1, "B").source is None
    assert f"**Source:** *{grade.UNGROUNDED}*" in feedback_markdown(session, 1)
    assert grade.UNGROUNDED == "(ungrounded: written by the model without a course source)"
    assert "⚠️ *Ungrounded: written by the model without a course source.*" in question_markdown(session, 1)


def test_a_quiz_the_course_runs_out_of_is_as_long_as_what_was_written():
    item = sample_session(1).quiz.questions[0]
    session = QuizSession(Quiz(topic="loss functions"), requested=5)
    for _ in session.fill([item, item]):
        assert grade.progress_markdown(session, 5).endswith(f"Writing question {session.total + 1}…")
    assert session.requested == 2 and question_markdown(session, 1).startswith("**Question 2 of 2**")
    assert (
        grade.progress_markdown(session, 5) == "2 of 5 questions: all that could be written and checked on this topic."
    )
    assert grade.progress_markdown(session, 2) == "All 2 questions ready."
    assert grade.progress_markdown(QuizSession(Quiz(topic="x")), 3).startswith("No question could be written")
    stopped = QuizSession(Quiz(topic="x"), requested=5)
    filling = stopped.fill([item, item])
    next(filling)
    filling.close()  # Stop: the quiz was cut short, not exhausted
    assert stopped.requested == 5 and not stopped.writing


def test_the_lists_offer_the_course_first_then_the_students_own_then_the_model_alone(kb_home):
    KnowledgeBase.create("zeta")
    KnowledgeBase.create("alpha")
    assert choices() == [COURSE, "alpha", "zeta", NO_KB]
    assert pick("alpha", choices()) == "alpha"
    for bad in ("../data", "/etc/passwd", "ALPHA", "missing", ""):
        with pytest.raises(KnowledgeError, match="choose one of course, alpha, zeta, none"):
            pick(bad, choices())


def test_tutors_build_one_grounded_tutor_per_knowledge_base_on_first_use_across_threads(kb_home):
    import time
    from concurrent.futures import ThreadPoolExecutor

    KnowledgeBase.create("alpha")
    made: list[str] = []

    def grounded(name: str) -> NamedTutor:
        made.append(name)
        time.sleep(0.05)  # a slow first build: eight first questions at once must still build one tutor
        return NamedTutor(name)

    plain = EchoTutor()
    tutors = Tutors(plain, grounded)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(tutors, ["alpha"] * 8))
    assert made == ["alpha"] and all(t is got[0] for t in got) and got[0].name == "alpha"
    assert tutors(NO_KB) is plain and tutors.default == COURSE and made == ["alpha"]
    with pytest.raises(KnowledgeError, match="choose one of"):
        tutors("../alpha")
    alone = Tutors(plain)  # no grounded factory: the model alone is the only choice
    assert alone.choices() == [NO_KB] and alone.default == NO_KB and alone(NO_KB) is plain
    with pytest.raises(KnowledgeError, match="choose one of none"):
        alone(COURSE)


def test_adding_notes_indexes_them_once_and_a_bad_file_leaves_nothing_behind(kb_home, notes):
    kb, report = add_notes("MyNotes", [str(notes)])
    assert kb.name == "mynotes" and report.added == ["regularization.md"] and "mynotes" in choices()
    assert added_text(kb, report).startswith("mynotes: added regularization.md (1 document, ")
    kb, again = add_notes("mynotes", [str(notes)])
    assert (
        again.skipped == ["regularization.md"]
        and not again.added
        and "unchanged regularization.md" in added_text(kb, again)
    )
    scan = notes.parent / "scan.pdf"
    scan.write_bytes(b"%PDF-1.4 not really a pdf")
    with pytest.raises(KnowledgeError, match=r"scan\.pdf"):
        add_notes("fresh", [str(notes), str(scan)])
    assert "fresh" not in KnowledgeBase.names(), "a failed first add leaves no empty knowledge base"
    with pytest.raises(KnowledgeError, match=r"scan\.pdf"):
        add_notes("mynotes", [str(scan)])
    assert KnowledgeBase("mynotes").documents() == ["regularization.md"], "a failed add leaves the index as it was"
    for name, message in (("course", "shipped starter course"), ("../etc", "bad knowledge base name")):
        with pytest.raises(KnowledgeError, match=message):
            add_notes(name, [str(notes)])
    with pytest.raises(KnowledgeError, match="choose one or more files"):
        add_notes("mynotes", [])


def test_a_quiz_request_reads_a_listed_knowledge_base_or_none_for_the_model_alone(kb_home):
    import gradio as gr

    KnowledgeBase.create("mynotes")
    course = app.quiz_request("dropout", 2, "easy")
    assert (course.kb, course.grounded) == (COURSE, True), "the API's default: the shipped course"
    assert (app.quiz_request("dropout", 2, "easy", "mynotes").kb, app.quiz_request("x", 1, "easy", "").kb) == (
        "mynotes",
        COURSE,
    )
    alone = app.quiz_request("dropout", 2, "easy", NO_KB)
    assert (alone.kb, alone.grounded) == (None, False)
    for bad in ("../../etc/passwd", "/tmp", "nope"):
        with pytest.raises(gr.Error, match="choose one of"):
            app.quiz_request("dropout", 2, "easy", bad)


def test_a_grounded_quiz_on_a_students_notes_shows_sources_and_an_uncovered_topic_says_what_to_do(kb_home, notes):
    import gradio as gr

    from quizgen import QuizAgent
    from tutor.models.fake import FakeModel

    add_notes("mynotes", [str(notes)])
    agent = QuizAgent(FakeModel())
    agent.grounded.verify_answers = False  # a scripted model cannot read: open-book verification is tested elsewhere
    session = list(app.write_quiz(agent, app.quiz_request("regularization", 2, "easy", "mynotes")))[-1]
    assert len(session.quiz) == 2 and session.quiz.metadata.extra["kb"] == "mynotes"
    for index, item in enumerate(session.quiz.questions):
        question = item.question
        assert question.grounded and question.source.doc == "regularization.md"
        session.answer(index, question.answer)
        text = feedback_markdown(session, index)
        assert f"**Source:** {question.source.cite()}" in text and question.source.quote.split()[0] in text
    with pytest.raises(gr.Error, match=r"has nothing on 'sourdough bread'.*Add notes.*none \(model only\)"):
        list(app.write_quiz(agent, app.quiz_request("sourdough bread", 2, "easy", "mynotes")))


def test_both_tabs_offer_the_knowledge_bases_and_adding_notes_never_waits_for_the_model(kb_home):
    from quizgen import QuizAgent
    from tutor.models.fake import FakeModel

    KnowledgeBase.create("mine")
    demo = app.build_app(EchoTutor(), QuizAgent(FakeModel()), NamedTutor)
    pickers = {b.elem_id: b for b in demo.blocks.values() if type(b).__name__ == "Dropdown" and b.elem_id}
    for elem_id in ("tutor-kb", "quiz-kb"):
        assert [value for _, value in pickers[elem_id].choices] == [COURSE, "mine", NO_KB], elem_id
        assert pickers[elem_id].value == COURSE, elem_id
    fns = list(demo.fns.values())
    public = {fn.api_name for fn in fns if fn.api_visibility == "public"}
    assert public == {"chat", "quiz", "answer"}, "a page handler took a public endpoint's name"
    model_fns = sorted(fn.name for fn in fns if fn.concurrency_id == app.MODEL_LANE)
    assert model_fns == ["chat_api", "quiz_api", "respond", "respond", "start"]
    add = next(fn for fn in fns if fn.name == "add_files")
    assert add.concurrency_id != app.MODEL_LANE and add.concurrency_limit == 1 and add.api_visibility == "private"
    uploads = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "kb-files"]
    assert uploads[0].file_types == [".md", ".markdown", ".rst", ".txt", ".text", ".pdf"]
    alone = app.build_app(EchoTutor(), None)  # no grounded factory: the model alone, said so
    picker = next(b for b in alone.blocks.values() if getattr(b, "elem_id", None) == "tutor-kb")
    assert [value for _, value in picker.choices] == [NO_KB] and picker.value == NO_KB
