"""The app's seams as pure functions, and the page's wiring (no server, no model)."""

from __future__ import annotations

import pytest

import app
from quizgen import QuizRequest, schema
from quizgen.grade import QuizSession, feedback_markdown, option_choices, question_markdown, score_markdown
from quizgen.schema import Quiz


class EchoTutor:
    """Streams the question back word by word and records the history it was given."""

    def __init__(self) -> None:
        self.histories: list = []

    def stream(self, question: str, history=None):
        if not question.strip():
            raise ValueError("the question is empty: type a question")
        self.histories.append(history)
        for word in question.split():
            yield word + " "


def test_stream_reply_grows_and_turns_bad_input_into_a_page_error():
    import gradio as gr

    tutor = EchoTutor()
    history = [{"role": "user", "content": [{"type": "text", "text": "earlier"}]}]
    assert list(app.stream_reply(tutor, "one two", history)) == ["one ", "one two "]
    assert tutor.histories[0] == [{"role": "user", "content": "earlier"}]
    with pytest.raises(gr.Error, match="empty"):
        list(app.stream_reply(tutor, "  ", []))


def test_read_source_prefers_pasted_text_and_caps_uploads(tmp_path):
    upload = tmp_path / "notes.txt"
    upload.write_text("x" * (app.SOURCE_MAX_CHARS + 500))
    assert app.read_source("  pasted  ", str(upload)) == "pasted"
    assert len(app.read_source("", str(upload))) == app.SOURCE_MAX_CHARS
    assert app.read_source("", None) is None


def write_run(root, name: str, task: str, accuracy: float):
    """A finished benchmark run directory, as `ta bench run` leaves it (only what the report reads)."""
    run = root / name
    run.mkdir()
    summary = {"task": task, "model": "smollm2", "mode": "letter", "adapter": None, "accuracy": accuracy, "n": 50}
    summary |= {"ci95": [accuracy - 0.1, accuracy + 0.1], "parse_failures": 0, "complete": True}
    (run / "summary.json").write_text(__import__("json").dumps(summary))
    return run


def test_resolve_runs_accepts_only_listed_run_names(tmp_path):
    write_run(tmp_path, "run-a", "arc_challenge", 0.3)
    write_run(tmp_path, "run-b", "truthfulqa_mc1", 0.25)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "file.txt").write_text("not a run")
    assert sorted(app.list_runs(tmp_path)) == ["run-a", "run-b"]
    assert app.resolve_runs(["run-a"], tmp_path) == [tmp_path / "run-a"]
    for bad in (["../etc"], ["/etc"], ["file.txt"], ["not-a-run"]):
        with pytest.raises(ValueError, match="Refresh"):
            app.resolve_runs(bad, tmp_path)
    assert app.list_runs(tmp_path / "missing") == []


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


def test_quiz_tab_degrades_with_a_clear_message_without_an_agent():
    demo = app.build_app(EchoTutor(), None)
    texts = [str(block.value) for block in demo.blocks.values() if type(block).__name__ == "Markdown"]
    assert any("Quizzes are unavailable" in t for t in texts)


def test_in_one_thread_steps_and_closes_a_stream_on_one_thread_whatever_thread_asks():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    seen: list[int] = []
    closed = threading.Event()

    def stream():
        try:
            for i in range(100):
                seen.append(threading.get_ident())
                yield i
        finally:
            seen.append(threading.get_ident())
            closed.set()

    wrapped = app.in_one_thread(stream)
    with ThreadPoolExecutor(4) as pool:  # as Gradio does: each step on whichever pool thread is free
        got = [pool.submit(next, wrapped).result() for _ in range(5)]
        pool.submit(wrapped.close).result()
    assert got == [0, 1, 2, 3, 4]
    assert closed.wait(5), "closing the consumer stops the stream"
    assert len(set(seen)) == 1 and seen[0] != threading.get_ident()


def test_in_one_thread_raises_the_streams_error_in_the_consumer():
    def broken():
        yield "a"
        raise ValueError("model failed: reload it")

    wrapped = app.in_one_thread(broken)
    assert next(wrapped) == "a"
    with pytest.raises(ValueError, match="reload"):
        next(wrapped)


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
    paths = {fmt: app.export_quiz(session, fmt, tmp_path) for fmt in app.EXPORT_FORMATS}
    quiz = export.from_json(open(paths["json"]).read())
    assert quiz.topic == "loss functions" and len(quiz.questions) == 2 and quiz.questions[1].verified is False
    assert zipfile.is_zipfile(paths["qti"])
    assert "Cross-entropy" in open(paths["gift"]).read() and "Cross-entropy" in open(paths["anki"]).read()
    with pytest.raises(ValueError, match="unknown format"):
        app.export_quiz(session, "../../etc/passwd", tmp_path)
    with pytest.raises(ValueError, match="generate one first"):
        app.export_quiz(QuizSession(Quiz(topic="")), "json", tmp_path)


def test_compare_runs_gives_the_table_and_chart_of_the_chosen_runs(tmp_path):
    pytest.importorskip("benchmarks.report", reason="benchmarks is not installed")
    runs = tmp_path / "runs"
    runs.mkdir()
    write_run(runs, "arc", "arc_challenge", 0.31)
    write_run(runs, "tqa", "truthfulqa_mc1", 0.24)
    table, png = app.compare_runs(["arc", "tqa"], runs, tmp_path / "out")
    assert "ARC-Challenge" in table and "TruthfulQA MC1" in table and "31.0" in table
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="pick one or more"):
        app.compare_runs([], runs, tmp_path / "out")


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
    app.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_serve_flags_defaults_and_environment_fallbacks(monkeypatch):
    args = serve_args(monkeypatch, {}, [])
    assert (args.model, args.host, args.port, args.queue_max) == ("default", "127.0.0.1", 7860, app.QUEUE_MAX)
    assert args.func is app.cmd_serve
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
    monkeypatch.setattr(app, "load_from_args", lambda args: pytest.fail("the model loaded"))
    with pytest.raises(app.CLIError, match="--queue-max must be at least 1"):
        app.cmd_serve(args)


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
