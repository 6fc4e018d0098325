"""The app's seams as pure functions, and the page's wiring (no server, no model)."""

from __future__ import annotations

import pytest

import app


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


def test_normalize_history_accepts_browser_content_blocks():
    browser = [
        {"role": "user", "content": [{"type": "text", "text": "What is a tensor?"}], "metadata": None},
        {"role": "assistant", "content": [{"type": "text", "text": "An array "}, {"type": "text", "text": "of ints."}]},
        {"role": "user", "content": [{"type": "file", "file": {"path": "/tmp/x.png"}}]},  # a file: no text, dropped
    ]
    assert app.normalize_history(browser) == [
        {"role": "user", "content": "What is a tensor?"},
        {"role": "assistant", "content": "An array of ints."},
    ]


def test_normalize_history_accepts_client_strings_and_pairs():
    client = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert app.normalize_history(client) == client
    assert app.normalize_history([("Q1", "A1"), ("Q2", None)]) == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]
    assert app.normalize_history(None) == []
    assert app.normalize_history([{"role": "system", "content": "ignored"}]) == []


def test_message_text_of_each_shape():
    assert app.message_text("plain") == "plain"
    assert app.message_text({"type": "text", "text": "block"}) == "block"
    assert app.message_text([{"type": "text", "text": "a"}, {"type": "file", "file": {}}, "b"]) == "ab"
    assert app.message_text(None) == ""


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


def test_quiz_run_rejects_bad_answers_before_grading():
    run = app.QuizRun("topic", 3)
    with pytest.raises(ValueError, match="no question 1"):
        run.answer(0, "A")
    assert app.question_markdown(run, 0).startswith("*No quiz yet")
    assert app.option_choices(run, 0) == [] and app.score_markdown(run) == ""


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


def sample_run(n: int = 2):
    """A QuizRun holding real quizgen items (written by hand: the grading and export paths need no model)."""
    schema = pytest.importorskip("quizgen.schema", reason="quizgen is not installed")
    question = schema.Question(
        stem="Which loss is usual for classification?",
        options=["Mean squared error", "Cross-entropy", "Hinge on pixels", "L1 on labels"],
        answer="B",
        explanation="Cross-entropy scores predicted class probabilities.",
        wrong_reasons={"A": "MSE suits regression.", "C": "Not a standard loss.", "D": "Labels are classes."},
        objective="choose a classification loss",
    )
    run = app.QuizRun("  loss   functions ", n)
    run.items = [
        schema.QuizItem(question=question, verified=True),
        schema.QuizItem(question=question, verified=False, issues=["verification: the model chose A"]),
    ][:n]
    run.finished = True
    return run


def test_quiz_run_grades_through_quizgen_and_keeps_the_score():
    run = sample_run()
    assert run.topic == "loss functions"
    right = run.answer(0, "B")
    assert right.correct and right.right_letter == "B" and right.why_wrong is None
    wrong = run.answer(1, "A")
    assert not wrong.correct and wrong.why_wrong == "MSE suits regression."
    assert run.score == 1
    assert app.score_markdown(run) == "### Final score: 1 / 2"
    assert "Correct!" in app.feedback_markdown(run, 0) and "B. Cross-entropy" in app.feedback_markdown(run, 0)
    text = app.feedback_markdown(run, 1)
    assert "right answer is B. Cross-entropy" in text and "MSE suits regression." in text
    with pytest.raises(ValueError, match="A, B, C or D"):
        run.answer(0, "E")


def test_unverified_questions_are_marked_and_options_lettered():
    run = sample_run()
    assert "Unverified" not in app.question_markdown(run, 0)
    assert "Unverified" in app.question_markdown(run, 1) and "the model chose A" in app.question_markdown(run, 1)
    assert [letter for _, letter in app.option_choices(run, 0)] == ["A", "B", "C", "D"]
    assert app.option_choices(run, 0)[1][0] == "B. Cross-entropy"


def test_export_writes_each_format_and_json_round_trips(tmp_path):
    import zipfile

    from quizgen import export

    run = sample_run()
    paths = {fmt: app.export_quiz(run, fmt, tmp_path) for fmt in app.EXPORT_FORMATS}
    quiz = export.from_json(open(paths["json"]).read())
    assert quiz.topic == "loss functions" and len(quiz.questions) == 2 and quiz.questions[1].verified is False
    assert zipfile.is_zipfile(paths["qti"])
    assert "Cross-entropy" in open(paths["gift"]).read() and "Cross-entropy" in open(paths["anki"]).read()
    with pytest.raises(ValueError, match="unknown format"):
        app.export_quiz(run, "../../etc/passwd", tmp_path)
    with pytest.raises(ValueError, match="generate one first"):
        app.export_quiz(app.QuizRun(), "json", tmp_path)


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


def test_recent_keeps_the_last_exchanges_starting_with_a_question():
    turns = [{"role": r, "content": f"{r}{i}"} for i in range(6) for r in ("user", "assistant")]
    assert app.recent(turns, 4) == turns[-4:]
    assert app.recent(turns, 3) == turns[-2:], "an answer without its question is dropped"
    assert app.recent(turns, 0) == [] and app.recent([], 8) == []
    tutor = EchoTutor()
    list(app.stream_reply(tutor, "q", turns))
    assert tutor.histories[0] == turns[-app.HISTORY_MESSAGES :]
