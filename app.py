"""The web page students use: chat with the teaching assistant, take quizzes, compare benchmark runs.

``build_app(tutor, quiz_agent, grounded)`` returns a ``gr.Blocks`` with the programs injected;
``build_app(*app_serve.make_programs(model))`` is the page on one model. ``ta serve`` and ``python app.py`` (how a
Hugging Face Space runs it) serve it: :mod:`app_serve`.

Both tabs read the knowledge base a student picks (``tutor.tutors``): the shipped course (the default), their
own notes (added on the page by the knowledge base's own ingestion), or none: the model alone, marked ungrounded.
Every answer and every question's feedback shows the course passage it comes from.

The page only wires: quizzes are graded by ``quizgen.QuizSession`` and held to ``quizgen.request``'s limits,
chat history is read by ``tutor.explain``. Events that touch the model run up to the model's own concurrency at once
(llama.cpp decodes up to four requests in one batch; a backend without batching takes one at a time), chats and
quizzes in lanes of their own so that a question never queues behind quizzes being written (the model runs chats
first: ``tutor.models.batching.interactive``), and the rest wait in Gradio's bounded queue. The page never names
a model or a path: a knowledge base is picked from the list of names.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import app_progress as progress_page
from benchmarks.report import compare_runs, list_runs
from quizgen import grade
from quizgen.grade import QuizSession
from quizgen.request import DEFAULT_QUESTIONS, MAX_QUESTIONS, QuizRequest
from quizgen.schema import DIFFICULTIES, Quiz
from tutor.errors import InputError, TutorError
from tutor.knowledge import COURSE, MAX_FILE_MB, SUPPORTED
from tutor.models.batching import interactive_stream
from tutor.threads import in_one_thread
from tutor.tutors import NO_KB, Tutors, add_notes, added_text, choices, pick

if TYPE_CHECKING:
    from quizgen.program import QuizAgent
    from tutor.progress.tracker import Progress

MODEL_LANE = "model"  # the concurrency_id of every event that runs the model, in the one-lane build
LANES_ENV = "TA_MODEL_LANES"  # overrides how many model events run at once (1: the one-lane build, for comparisons)


def lanes(limit: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings of the events that run the model, (chats, quizzes): up to ``limit`` of each at once.

    One lane each, so a student's question never waits in Gradio's queue behind quizzes being written (the
    model then runs it ahead of them). ``limit`` 1 is the one-lane build: every model event in one line.
    """
    if limit == 1:
        return ({"concurrency_id": MODEL_LANE, "concurrency_limit": 1},) * 2
    return (
        {"concurrency_id": f"{MODEL_LANE}-chat", "concurrency_limit": limit},
        {"concurrency_id": f"{MODEL_LANE}-quiz", "concurrency_limit": limit},
    )


FREE = {"concurrency_limit": None, "api_visibility": "private"}  # an event that never waits for the model
QUEUE_MAX = 16  # requests waiting beyond this are told the app is busy instead of waiting for minutes
MAX_UPLOAD = f"{MAX_FILE_MB}mb"  # the knowledge base's cap on one file: a larger upload never reaches the app
NEW_KB = "mynotes"  # the name the Add notes box suggests
EXAMPLES = [
    "What is overfitting?",
    "Explain gradient descent with a small example.",
    "What is the difference between precision and recall?",
]
CSS = ".feedback-right {color: #1a7f37} .feedback-wrong {color: #b42318}"
KB_INFO = "answers come from this course material, with their sources; none: the model alone, unchecked"


@contextlib.contextmanager
def on_page() -> Iterator[None]:
    """A mistake the user can fix (a TutorError) becomes a message on the page; a bug keeps its traceback."""
    import gradio as gr

    try:
        yield
    except TutorError as exc:
        raise gr.Error(str(exc)) from exc


def stream_reply(tutor: Any, message: str, history: Sequence[Any] | None) -> Iterator[str]:
    """The growing reply to ``message``; a bad question becomes a message on the page, not a stack trace."""
    from tutor.explain import normalize_history, recent

    past = recent(normalize_history(history))
    text = ""
    with on_page():  # InputError: the tutor's own check ("the question is empty")
        for piece in in_one_thread(lambda: interactive_stream(lambda: tutor.stream(message, past))):
            text += piece
            yield text


# ---------------------------------------------------------------- the quiz one student is taking


def quiz_request(topic: str | None, n: float | None, difficulty: str | None, kb: str | None = COURSE) -> QuizRequest:
    """The request a form or an API call makes; :data:`NO_KB` asks for one the model writes alone (ungrounded)."""
    with on_page():
        kb = pick(kb or COURSE, choices())
        grounded = kb != NO_KB
        if n is not None and not (isinstance(n, int | float) and math.isfinite(n)):
            raise InputError("the number of questions must be a number")
        if n is not None and not 1 <= n <= MAX_QUESTIONS:  # before int(): 1e308 would be a 309-digit message
            raise InputError(f"the number of questions must be between 1 and {MAX_QUESTIONS}, got {n:g}")
        if difficulty is not None and not isinstance(difficulty, str):
            raise InputError(f"difficulty must be one of {', '.join(DIFFICULTIES)}")
        level = (difficulty or "medium").strip()
        return QuizRequest(
            topic or "", int(n or DEFAULT_QUESTIONS), level, kb=kb if grounded else None, grounded=grounded
        )


def write_quiz(agent: QuizAgent, request: QuizRequest) -> Iterator[QuizSession]:
    """A session for ``request``, yielded after each question the agent finishes and once more when it stops."""
    import gradio as gr

    from quizgen.grounded import NotCoveredError

    session = QuizSession(agent.assemble(request, []), requested=request.n)
    started = time.perf_counter()
    try:
        for _ in session.fill(in_one_thread(lambda: agent.stream(request))):
            yield session
    except NotCoveredError as exc:  # its message names the command line's ways out: name the page's too
        raise gr.Error(f"{exc}. On this page: add your notes under Add notes, or pick {NO_KB!r}.") from exc
    except TutorError as exc:
        raise gr.Error(str(exc)) from exc
    finally:  # the questions written so far (all, or up to Stop), with metadata on how they were made
        session.quiz.metadata = agent.assemble(request, session.quiz.questions, time.perf_counter() - started).metadata
    yield session


# ---------------------------------------------------------------- the page


def build_app(
    tutor: Any,
    quiz_agent: QuizAgent | None = None,
    grounded: Callable[[str], Any] | None = None,
    *,
    runs_dir: str | Path = "runs",
    queue_max: int = QUEUE_MAX,
    title: str = "AI teaching assistant",
    progress: Progress | None = None,
    model_concurrency: int = 1,
) -> Any:
    """The Gradio app: Tutor, Quiz and Results tabs, plus the ``/chat``, ``/quiz`` and ``/answer`` API.

    Args:
        tutor: the model-only tutor (the "none (model only)" choice): a ``tutor.explain.Tutor``, or anything
            with ``.stream(question, history)`` yielding text.
        quiz_agent: a ``quizgen.QuizAgent`` (it keeps no state between quizzes), or None: the quiz tab then
            says quizzes are unavailable.
        grounded: a knowledge base's name -> the tutor that answers from it and cites it (a
            ``tutor.grounded.GroundedTutor``), made when the name is first picked; None: the Tutor tab offers
            the model-only tutor alone.
        runs_dir: the folder whose subdirectories are benchmark runs for the Results tab.
        queue_max: the most requests waiting at once; beyond it a request is told the app is busy.
        title: the page title.
        progress: the students' progress (``tutor.progress``), for a server with accounts: answers are stored,
            and the Review, My progress and Class tabs and their API are added (``app_progress``).
            None: the anonymous page, which stores nothing.
        model_concurrency: how many model events run at once (``Model.concurrency``: llama.cpp decodes up to
            that many requests in one batch); ``$TA_MODEL_LANES`` overrides it.
    """
    import gradio as gr

    n_lanes = int(os.environ.get(LANES_ENV) or model_concurrency)
    if n_lanes < 1:
        raise InputError(f"{LANES_ENV} / model_concurrency must be at least 1, got {n_lanes}")
    chat_lane, quiz_lane = lanes(n_lanes)

    files = Path(tempfile.mkdtemp(prefix="ta-app-"))
    tutors = Tutors(tutor, grounded)

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\nAsk about a machine-learning concept, or take a quiz with instant feedback.")
        if progress is not None:
            gr.Button("Log out", link="/logout", size="sm", elem_id="logout")
        with gr.Tab("Tutor", id="tutor"):
            tutor_kb = _chat_tab(gr, tutors, chat_lane)
        with gr.Tab("Quiz", id="quiz"):
            session = gr.State(QuizSession(Quiz(topic="")))
            quiz_kb = _quiz_tab(gr, quiz_agent, session, tutors, tutor_kb, files, progress, quiz_lane)
        on_load = progress_page.tabs(gr, progress) if progress is not None else None
        with gr.Tab("Results", id="results"):
            _results_tab(gr, Path(runs_dir), files)
        _api(gr, tutors, quiz_agent, session, progress, chat_lane, quiz_lane)
        if on_load is not None:
            progress_page.api(gr, progress)
            on_load(demo)
        gr.Markdown(
            f"<small>The model answers up to {n_lanes} request{'s' if n_lanes > 1 else ''} at once; up to {queue_max} "
            "more wait in line, and beyond that the page says it is busy: try again in a minute.</small>"
        )
        # Each visit lists the knowledge bases made since the page was built (here, or by `ta kb add`).
        demo.load(lambda: gr.update(choices=tutors.choices()), None, [tutor_kb], **FREE)
        if quiz_kb is not None:
            demo.load(lambda: gr.update(choices=choices()), None, [quiz_kb], **FREE)
    demo.queue(max_size=queue_max, default_concurrency_limit=1)
    return demo


def _chat_tab(gr: Any, tutors: Tutors, chat_lane: dict[str, Any]) -> Any:
    picked = gr.Dropdown(
        tutors.choices(), value=tutors.default, label="Knowledge base", info=KB_INFO, elem_id="tutor-kb"
    )
    chatbot = gr.Chatbot(label="Teaching assistant", elem_id="chat", height=420, buttons=["copy"])
    with gr.Row():
        box = gr.Textbox(placeholder="Ask a question or name a concept…", show_label=False, scale=5, elem_id="ask")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        stop = gr.Button("Stop", scale=1, elem_id="stop")
        clear = gr.Button("Clear chat", scale=1, elem_id="clear")
    gr.Examples(EXAMPLES, inputs=[box], label="Example questions")

    def respond(message: str, history: list, kb: str) -> Iterator[tuple[list, str]]:
        from tutor.explain import normalize_history

        with on_page():
            tutor = tutors(kb)
        shown = [*normalize_history(history), {"role": "user", "content": message}]
        for text in stream_reply(tutor, message, history):
            yield [*shown, {"role": "assistant", "content": text}], ""

    events = [
        trigger(respond, [box, chatbot, picked], [chatbot, box], api_visibility="private", **chat_lane)
        for trigger in (box.submit, send.click)
    ]
    stop.click(None, cancels=events, **FREE)
    # Cancel first, then clear: cleared in the same event, a cancelled stream's last update could land after it.
    clear.click(None, cancels=events, **FREE).then(lambda: ([], ""), None, [chatbot, box], **FREE)
    return picked


def _quiz_tab(
    gr: Any,
    agent: QuizAgent | None,
    session: Any,
    tutors: Tutors,
    tutor_kb: Any,
    files: Path,
    progress: Any,
    quiz_lane: dict[str, Any],
) -> Any:
    if agent is None:
        gr.Markdown("⚠️ **Quizzes are unavailable on this server**: it was started without the quiz generator.")
        return None
    with gr.Row():
        topic = gr.Textbox(label="Topic", placeholder="e.g. overfitting", scale=3, elem_id="topic")
        picked = gr.Dropdown(choices(), value=COURSE, label="Knowledge base", info=KB_INFO, scale=2, elem_id="quiz-kb")
    with gr.Row():
        count = gr.Slider(1, MAX_QUESTIONS, value=DEFAULT_QUESTIONS, step=1, label="Questions", elem_id="count")
        level = gr.Radio(list(DIFFICULTIES), value="medium", label="Difficulty", elem_id="difficulty")
    _notes(gr, tutors, tutor_kb, picked)
    with gr.Row():
        generate = gr.Button("Generate quiz", variant="primary", elem_id="generate")
        stop = gr.Button("Stop", elem_id="quiz-stop")
        weak = gr.Button("Practice my weak spots", elem_id="weak", visible=progress is not None)
    writing = gr.Markdown(elem_id="quiz-progress")
    with gr.Row():
        with gr.Column(scale=3):
            current = gr.State(0)  # the question on screen (0-based)
            question = gr.Markdown(grade.question_markdown(QuizSession(Quiz(topic="")), 0), elem_id="quiz-question")
            options = gr.Radio([], label="Your answer", elem_id="quiz-options")
            with gr.Row():
                prev = gr.Button("◀ Previous", size="sm", elem_id="prev")
                check = gr.Button("Check answer", variant="primary", elem_id="check")
                nxt = gr.Button("Next ▶", size="sm", elem_id="next")
            feedback = gr.Markdown(elem_id="quiz-feedback")
        with gr.Column(scale=1):
            score = gr.Markdown(elem_id="quiz-score")
            fmt = gr.Dropdown(list(grade.DOWNLOADS), value="json", label="Download as")
            download = gr.Button("Download quiz", size="sm", elem_id="download")
            file = gr.File(label="Quiz file", interactive=False, height=90, elem_id="quiz-file")
    view = [current, question, options, feedback]

    def show(state: QuizSession, index: int) -> tuple:
        letters = gr.update(choices=grade.option_choices(state, index), value=None)
        return index, grade.question_markdown(state, index), letters, grade.feedback_markdown(state, index)

    def start(topic_text: str, n: float, difficulty: str, kb: str) -> Iterator[tuple]:
        request = quiz_request(topic_text, n, difficulty, kb)
        waiting = QuizSession(Quiz(topic=request.topic), requested=request.n)
        yield waiting, f"Writing question 1 of {request.n}…", *show(waiting, 0), ""
        for state in write_quiz(agent, request):
            first = state.writing and len(state.quiz) == 1  # later ones never reset what the student is doing
            shown = show(state, 0) if first else (gr.skip(),) * 4
            yield state, grade.progress_markdown(state, request.n), *shown, grade.score_markdown(state)

    def step(state: QuizSession, index: int, delta: int) -> tuple:
        return show(state, max(0, min(state.total - 1, index + delta))) if state.total else (gr.skip(),) * 4

    def save(state: QuizSession, kind: str) -> str:
        with on_page():
            return grade.save_quiz(state, kind, files)

    form, shown = [topic, count, level, picked], [session, writing, *view, score]
    started = generate.click(start, form, shown, api_visibility="private", **quiz_lane)
    events = [started]
    if progress is not None:  # the least mastered topic fills the form, then the quiz is written as usual
        chosen = weak.click(progress_page.weak_spots(progress), [picked], [topic, picked], **FREE)
        events.append(chosen.success(start, form, shown, api_visibility="private", **quiz_lane))
    stop.click(None, cancels=events, **FREE)
    check.click(progress_page.checker(progress), [session, current, options], [feedback, score], **FREE)
    prev.click(lambda s, i: step(s, i, -1), [session, current], view, **FREE)
    nxt.click(lambda s, i: step(s, i, 1), [session, current], view, **FREE)
    download.click(save, [session, fmt], [file], **FREE)
    return picked


def _notes(gr: Any, tutors: Tutors, tutor_kb: Any, quiz_kb: Any) -> None:
    """The Add notes box: files into a knowledge base (new or not); both tabs then offer it, the Quiz tab picks it."""
    with gr.Accordion("Add notes: quiz on (and ask about) your own course material", open=False):
        with gr.Row():
            name = gr.Textbox(
                NEW_KB, label="Knowledge base name", info="a new name, or one to add to", elem_id="kb-name"
            )
            kinds = f"{', '.join(SUPPORTED)}; up to {MAX_FILE_MB} MB each"
            upload = gr.File(
                label=f"Notes ({kinds})", file_count="multiple", file_types=list(SUPPORTED), scale=2, elem_id="kb-files"
            )
        add = gr.Button("Add to knowledge base", elem_id="kb-add")
        added = gr.Markdown(elem_id="kb-status")

    def add_files(kb_name: str, paths: list[str] | None) -> tuple[str, str]:
        if not paths:  # also what a click during the upload sends
            raise gr.Error(f"choose the files to add first ({', '.join(SUPPORTED)}) and wait until they have uploaded")
        try:
            kb, report = add_notes(kb_name, paths)
        except TutorError as exc:  # name each upload as the student does, not by the server's copy
            message = str(exc)
            for path in paths:
                message = message.replace(path, Path(path).name)
            raise gr.Error(message) from exc
        return f"✓ {added_text(kb, report)}. Quizzes now read **{kb.name}**; pick it in the Tutor tab too.", kb.name

    def offer(kb_name: str) -> tuple:  # only after a success: an error would mark the lists, not the message
        return gr.update(choices=choices(), value=kb_name), gr.update(choices=tutors.choices()), None

    # Indexing embeds passages on the CPU, not the model: a lane of its own, so the model's queue never waits on it.
    notes = {"concurrency_id": "knowledge", "concurrency_limit": 1, "api_visibility": "private"}
    made = gr.State()  # the knowledge base's name as stored (lower case)
    added_ok = add.click(add_files, [name, upload], [added, made], **notes)
    added_ok.success(offer, [made], [quiz_kb, tutor_kb, upload], concurrency_limit=None, api_visibility="private")


def _results_tab(gr: Any, root: Path, files: Path) -> None:
    gr.Markdown(f"Benchmark runs found under `{root}` (written by `ta bench`).")
    with gr.Row():
        picked = gr.Dropdown(list_runs(root), multiselect=True, label="Runs", scale=4)
        refresh = gr.Button("Refresh", scale=1)
        compare = gr.Button("Compare", variant="primary", scale=1)
    table = gr.Markdown()
    chart = gr.Image(label="Accuracy", type="filepath", interactive=False)

    def show(names: list[str]) -> tuple[str, str]:
        with on_page():
            return compare_runs(names, root, files)

    refresh.click(lambda: gr.update(choices=list_runs(root)), None, [picked], **FREE)
    compare.click(show, [picked], [table, chart], **FREE)


def _api(
    gr: Any,
    tutors: Tutors,
    quiz_agent: QuizAgent | None,
    session: Any,
    progress: Any,
    chat_lane: dict[str, Any],
    quiz_lane: dict[str, Any],
) -> None:
    """Endpoints for gradio_client, on hidden components: ``/chat``, ``/quiz``, ``/answer``.

    ``/chat`` and ``/quiz`` take a knowledge base last, optional: a name the page lists (default: the course).
    """
    history = gr.State([])
    with gr.Column(visible=False):
        message, chat_kb, reply, chat = gr.Textbox(), gr.Textbox(tutors.default), gr.Textbox(), gr.Button()
        topic, count, level = gr.Textbox(), gr.Number(precision=0), gr.Textbox()
        quiz_kb, quiz_json, quiz = gr.Textbox(COURSE), gr.Textbox(), gr.Button()
        number, letter, feedback, answer = gr.Number(precision=0), gr.Textbox(), gr.Textbox(), gr.Button()

    def chat_api(text: str, knowledge_base: str, past: list) -> Iterator[tuple[str, list]]:
        """Stream the reply to ``text``; this client's history is kept on the server (gr.State)."""
        from tutor.explain import recent

        with on_page():
            tutor = tutors(knowledge_base or tutors.default)
        reply_text = ""
        for reply_text in stream_reply(tutor, text, past):
            yield reply_text, past
        turn = [{"role": "user", "content": text}, {"role": "assistant", "content": reply_text}]
        yield reply_text, recent([*past, *turn])  # only what the model will read again is kept

    def quiz_api(topic_text: str, n: float, difficulty: str, knowledge_base: str) -> Iterator[tuple[str, QuizSession]]:
        """Yield the quiz JSON (each question with its source) as it grows; the last value is the whole quiz."""
        from quizgen import export

        request = quiz_request(topic_text, n, difficulty, knowledge_base)
        if quiz_agent is None:
            raise gr.Error("quizzes are unavailable on this server: it was started without the quiz generator")
        for state in write_quiz(quiz_agent, request):
            yield export.to_json(state.quiz), state

    chat.click(chat_api, [message, chat_kb, history], [reply, history], api_name="chat", **chat_lane)
    quiz.click(quiz_api, [topic, count, level, quiz_kb], [quiz_json, session], api_name="quiz", **quiz_lane)
    answer_api = progress_page.answerer(progress)  # stores the answer when the page has accounts
    answer.click(answer_api, [number, letter, session], [feedback], api_name="answer", concurrency_limit=None)


if __name__ == "__main__":
    from app_serve import main

    main()
