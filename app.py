"""The web page students use: chat with the teaching assistant, take quizzes, compare benchmark runs.

``build_app(tutor, quiz_agent)`` returns a ``gr.Blocks`` with the programs injected. ``ta serve`` (this module's
:func:`register`, the ``serve`` entry point) and ``python app.py`` (how a Hugging Face Space runs it) load the
model named at start-up and launch the page, with the same flags, defaults and environment fallbacks.

The page only wires: quizzes are graded by ``quizgen.QuizSession`` and held to ``quizgen.request``'s limits,
chat history is read by ``tutor.explain``. Every event that touches the model shares one ``concurrency_id``, so
one loaded model answers one request at a time and the rest wait in Gradio's bounded queue. The page never names
a model, and uploaded files are only ever read as text.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quizgen.grade import QuizSession, feedback_markdown, option_choices, question_markdown, score_markdown
from quizgen.request import DEFAULT_QUESTIONS, MAX_QUESTIONS, SOURCE_MAX_CHARS, QuizRequest
from quizgen.schema import DIFFICULTIES, Quiz
from tutor.cli import CLIError, add_model_args, load_from_args
from tutor.errors import TutorError

if TYPE_CHECKING:
    from quizgen.program import QuizAgent
    from tutor.explain import Tutor

MODEL_LANE = "model"  # the concurrency_id of every event that runs the model: one request at a time per model
QUEUE_MAX = 16  # requests waiting beyond this are told the app is busy instead of waiting for minutes
MAX_UPLOAD = "1mb"  # source texts are short; a larger upload is refused before it reaches the app
EXPORT_FORMATS = {"json": ".json", "gift": ".gift.txt", "qti": ".qti.zip", "anki": ".anki.txt"}
EXAMPLES = [
    "What is overfitting?",
    "Explain gradient descent with a small example.",
    "What is the difference between precision and recall?",
]
CSS = ".feedback-right {color: #1a7f37} .feedback-wrong {color: #b42318}"


def in_one_thread(make: Callable[[], Generator[Any, None, None]]) -> Iterator[Any]:
    """Iterate ``make()`` on a thread of its own and yield what it yields.

    Gradio runs each step of a sync generator on whichever pool thread is free, but a model stream holds the
    model's lock across steps, and a lock must be released by the thread that took it. Stepping (and closing)
    the stream on one thread keeps that true; when the page stops listening, the stream stops at its next piece.
    """
    pieces: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            with contextlib.closing(make()) as stream:
                for piece in stream:
                    pieces.put((True, piece))
                    if stop.is_set():
                        break
        except BaseException as exc:  # handed to the consumer, which raises it on the request's thread
            pieces.put((False, exc))
            return
        pieces.put((False, None))

    threading.Thread(target=produce, name="model-stream", daemon=True).start()
    try:
        while True:
            ok, piece = pieces.get()
            if not ok:
                if piece is not None:
                    raise piece
                return
            yield piece
    finally:
        stop.set()


def stream_reply(tutor: Tutor, message: str, history: Sequence[Any] | None) -> Iterator[str]:
    """The growing reply to ``message``; a bad question becomes a message on the page, not a stack trace."""
    import gradio as gr

    from tutor.explain import normalize_history, recent

    past = recent(normalize_history(history))
    try:
        text = ""
        for piece in in_one_thread(lambda: tutor.stream(message, past)):
            text += piece
            yield text
    except (TutorError, ValueError) as exc:  # ValueError: the tutor's own check ("the question is empty")
        raise gr.Error(str(exc)) from exc


# ---------------------------------------------------------------- the quiz one student is taking


def read_source(pasted: str | None, upload: str | None) -> str | None:
    """Pasted text, else the uploaded file's text (read as text only, capped); None when there is neither."""
    text = (pasted or "").strip()
    if not text and upload:
        with open(upload, encoding="utf-8", errors="replace") as f:
            text = f.read(SOURCE_MAX_CHARS).strip()
    return text[:SOURCE_MAX_CHARS] or None


def write_quiz(agent: QuizAgent, request: QuizRequest) -> Iterator[QuizSession]:
    """A session for ``request``, yielded after each question the agent finishes and once more when it stops."""
    import gradio as gr

    session = QuizSession(agent.assemble(request, []), requested=request.n)
    started = time.perf_counter()
    try:
        for _ in session.fill(in_one_thread(lambda: agent.stream(request))):
            yield session
    except TutorError as exc:
        raise gr.Error(str(exc)) from exc
    finally:  # the questions written so far (all, or up to Stop), with metadata on how they were made
        made = agent.assemble(request, session.quiz.questions, time.perf_counter() - started)
        session.quiz.metadata = made.metadata
    yield session


def quiz_request(topic: str | None, n: float | None, difficulty: str | None, source: str | None = None) -> QuizRequest:
    """The request a form or an API call makes; a bad one is a message on the page."""
    import gradio as gr

    try:
        return QuizRequest(topic or "", int(n or DEFAULT_QUESTIONS), (difficulty or "medium").strip(), source)
    except TutorError as exc:
        raise gr.Error(str(exc)) from exc


def export_quiz(session: QuizSession, fmt: str, folder: Path) -> str:
    """Write the quiz in ``fmt`` under ``folder``; returns the file's path for download."""
    from quizgen import export

    if not session.total:
        raise ValueError("there is no quiz to download yet: generate one first")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    data = export.dumps(session.quiz, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix="quiz-", suffix=EXPORT_FORMATS[fmt], delete=False) as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return f.name


# ---------------------------------------------------------------- benchmark results


def list_runs(root: Path) -> list[str]:
    """Names of the benchmark run directories under ``root`` (those with a config or summary), newest first."""
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if (p / "summary.json").is_file() or (p / "config.json").is_file()]
    return [p.name for p in sorted(dirs, key=lambda p: p.stat().st_mtime, reverse=True)]


def resolve_runs(names: Sequence[str] | None, root: Path) -> list[Path]:
    """The chosen run names as directories, accepting only names listed under ``root`` (no paths from the page)."""
    known = set(list_runs(root))
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ValueError(f"no run named {', '.join(unknown)} under {root}: press Refresh and pick from the list")
    return [root / n for n in names or []]


def compare_runs(names: Sequence[str] | None, root: Path, folder: Path) -> tuple[str, str]:
    """The comparison table (markdown) and chart (a PNG under ``folder``) of the chosen runs."""
    try:
        from benchmarks import report
    except ImportError as exc:
        raise ValueError(f"benchmark reports are unavailable on this server ({exc})") from exc
    dirs = resolve_runs(names, root)
    if not dirs:
        raise ValueError("pick one or more runs first")
    folder.mkdir(parents=True, exist_ok=True)
    png = Path(tempfile.mkdtemp(prefix="chart-", dir=folder)) / "compare.png"
    try:
        return report.compare_table(dirs), str(report.plot(dirs, png))
    except (ValueError, RuntimeError, OSError, KeyError) as exc:  # RunError: a broken or foreign directory
        raise ValueError(f"cannot compare these runs: {exc}") from exc


# ---------------------------------------------------------------- the page


def build_app(
    tutor: Tutor,
    quiz_agent: QuizAgent | None = None,
    *,
    runs_dir: str | Path = "runs",
    queue_max: int = QUEUE_MAX,
    title: str = "AI teaching assistant",
) -> Any:
    """The Gradio app: Tutor, Quiz and Results tabs, plus the ``/chat``, ``/quiz`` and ``/answer`` API.

    Args:
        tutor: a ``tutor.explain.Tutor`` (anything with ``.stream(question, history)`` yielding text).
        quiz_agent: a ``quizgen.QuizAgent`` (it keeps no state between quizzes), or None: the quiz tab then
            says quizzes are unavailable.
        runs_dir: the folder whose subdirectories are benchmark runs for the Results tab.
        queue_max: the most requests waiting at once; beyond it a request is told the app is busy.
        title: the page title.
    """
    import gradio as gr

    files = Path(tempfile.mkdtemp(prefix="ta-app-"))
    runs_root = Path(runs_dir)
    lane = {"concurrency_id": MODEL_LANE, "concurrency_limit": 1}
    free = {"concurrency_limit": None, "api_visibility": "private"}

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\nAsk about a machine-learning concept, or take a quiz with instant feedback.")
        with gr.Tab("Tutor", id="tutor"):
            _chat_tab(gr, tutor, lane, free)
        with gr.Tab("Quiz", id="quiz"):
            session = gr.State(QuizSession(Quiz(topic="")))
            _quiz_tab(gr, quiz_agent, session, lane, free, files)
        with gr.Tab("Results", id="results"):
            _results_tab(gr, runs_root, free, files)
        _api(gr, tutor, quiz_agent, session, lane)
        gr.Markdown(
            f"<small>One model answers one request at a time; up to {queue_max} wait in line, and beyond that "
            "the page says it is busy: try again in a minute.</small>"
        )
    demo.queue(max_size=queue_max, default_concurrency_limit=1)
    return demo


def _chat_tab(gr: Any, tutor: Tutor, lane: dict, free: dict) -> None:
    chatbot = gr.Chatbot(label="Teaching assistant", elem_id="chat", height=420, buttons=["copy"])
    with gr.Row():
        box = gr.Textbox(placeholder="Ask a question or name a concept…", show_label=False, scale=5, elem_id="ask")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        stop = gr.Button("Stop", scale=1, elem_id="stop")
        clear = gr.Button("Clear chat", scale=1, elem_id="clear")
    gr.Examples(EXAMPLES, inputs=[box], label="Example questions")

    def respond(message: str, history: list) -> Iterator[tuple[list, str]]:
        from tutor.explain import normalize_history

        shown = [*normalize_history(history), {"role": "user", "content": message}]
        for text in stream_reply(tutor, message, history):
            yield [*shown, {"role": "assistant", "content": text}], ""

    events = [
        trigger(respond, [box, chatbot], [chatbot, box], api_visibility="private", **lane)
        for trigger in (box.submit, send.click)
    ]
    stop.click(None, cancels=events, **free)
    # Cancel first, then clear: cleared in the same event, a cancelled stream's last update could land after it.
    clear.click(None, cancels=events, **free).then(lambda: ([], ""), None, [chatbot, box], **free)


def _quiz_tab(gr: Any, quiz_agent: QuizAgent | None, session: Any, lane: dict, free: dict, files: Path) -> None:
    if quiz_agent is None:
        gr.Markdown("⚠️ **Quizzes are unavailable on this server**: it was started without the quiz generator.")
        return
    with gr.Row():
        topic = gr.Textbox(label="Topic", placeholder="e.g. overfitting", scale=3, elem_id="topic")
        count = gr.Slider(
            1, MAX_QUESTIONS, value=DEFAULT_QUESTIONS, step=1, label="Questions", elem_id="count", scale=2
        )
        level = gr.Radio(list(DIFFICULTIES), value="medium", label="Difficulty", scale=2, elem_id="difficulty")
    with gr.Accordion("Source text (optional): questions are written from it", open=False):
        source = gr.Textbox(label="Paste text", lines=5, max_length=SOURCE_MAX_CHARS)
        upload = gr.File(label="…or upload a .txt / .md file", file_types=[".txt", ".md"], type="filepath")
    with gr.Row():
        generate = gr.Button("Generate quiz", variant="primary", elem_id="generate")
        stop = gr.Button("Stop", elem_id="quiz-stop")
    progress = gr.Markdown(elem_id="quiz-progress")
    with gr.Row():
        with gr.Column(scale=3):
            current = gr.State(0)  # the question on screen (0-based)
            question = gr.Markdown(question_markdown(QuizSession(Quiz(topic="")), 0), elem_id="quiz-question")
            options = gr.Radio([], label="Your answer", elem_id="quiz-options")
            with gr.Row():
                prev = gr.Button("◀ Previous", size="sm", elem_id="prev")
                check = gr.Button("Check answer", variant="primary", elem_id="check")
                nxt = gr.Button("Next ▶", size="sm", elem_id="next")
            feedback = gr.Markdown(elem_id="quiz-feedback")
        with gr.Column(scale=1):
            score = gr.Markdown(elem_id="quiz-score")
            fmt = gr.Dropdown(list(EXPORT_FORMATS), value="json", label="Download as")
            download = gr.Button("Download quiz", size="sm", elem_id="download")
            file = gr.File(label="Quiz file", interactive=False, height=90, elem_id="quiz-file")
    view = [current, question, options, feedback]

    def show(state: QuizSession, index: int) -> tuple:
        choices = gr.update(choices=option_choices(state, index), value=None)
        return index, question_markdown(state, index), choices, feedback_markdown(state, index)

    def start(topic_text: str, n: float, difficulty: str, pasted: str, path: str | None) -> Iterator[tuple]:
        request = quiz_request(topic_text, n, difficulty, read_source(pasted, path))
        waiting = QuizSession(Quiz(topic=request.topic), requested=request.n)
        yield waiting, f"Writing question 1 of {request.n}…", *show(waiting, 0), ""
        for state in write_quiz(quiz_agent, request):
            done = len(state.quiz)
            if not state.writing:
                yield state, f"All {done} questions ready.", *(gr.skip(),) * 4, score_markdown(state)
                continue
            note = "" if done == request.n else f" Writing question {done + 1}…"
            first = show(state, 0) if done == 1 else (gr.skip(),) * 4  # never reset what the student is doing
            yield state, f"{done} of {request.n} questions ready.{note}", *first, score_markdown(state)

    def grade(state: QuizSession, index: int, letter: str | None) -> tuple[str, str]:
        if not state.total:
            raise gr.Error("generate a quiz first")
        if not letter:
            raise gr.Error("pick an answer (A-D) first")
        state.answer(index, letter)
        return feedback_markdown(state, index), score_markdown(state)

    def step(state: QuizSession, index: int, delta: int) -> tuple:
        if not state.total:
            return (gr.skip(),) * 4
        return show(state, max(0, min(state.total - 1, index + delta)))

    def save(state: QuizSession, kind: str) -> str:
        try:
            return export_quiz(state, kind, files)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc

    inputs = [topic, count, level, source, upload]
    started = generate.click(start, inputs, [session, progress, *view, score], api_visibility="private", **lane)
    stop.click(None, cancels=[started], **free)
    check.click(grade, [session, current, options], [feedback, score], **free)
    prev.click(lambda s, i: step(s, i, -1), [session, current], view, **free)
    nxt.click(lambda s, i: step(s, i, 1), [session, current], view, **free)
    download.click(save, [session, fmt], [file], **free)


def _results_tab(gr: Any, root: Path, free: dict, files: Path) -> None:
    gr.Markdown(f"Benchmark runs found under `{root}` (written by `ta bench`).")
    with gr.Row():
        picked = gr.Dropdown(list_runs(root), multiselect=True, label="Runs", scale=4)
        refresh = gr.Button("Refresh", scale=1)
        compare = gr.Button("Compare", variant="primary", scale=1)
    table = gr.Markdown()
    chart = gr.Image(label="Accuracy", type="filepath", interactive=False)

    def show(names: list[str]) -> tuple[str, str]:
        try:
            return compare_runs(names, root, files)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc

    refresh.click(lambda: gr.update(choices=list_runs(root)), None, [picked], **free)
    compare.click(show, [picked], [table, chart], **free)


def _api(gr: Any, tutor: Tutor, quiz_agent: QuizAgent | None, session: Any, lane: dict) -> None:
    """Endpoints for gradio_client, on hidden components: ``/chat``, ``/quiz``, ``/answer``."""
    history = gr.State([])
    with gr.Column(visible=False):
        message, reply, chat = gr.Textbox(), gr.Textbox(), gr.Button()
        topic, count, level = gr.Textbox(), gr.Number(precision=0), gr.Textbox()
        quiz_json, quiz = gr.Textbox(), gr.Button()
        number, letter, feedback, answer = gr.Number(precision=0), gr.Textbox(), gr.Textbox(), gr.Button()

    def chat_api(text: str, past: list) -> Iterator[tuple[str, list]]:
        """Stream the reply to ``text``; this client's history is kept on the server (gr.State)."""
        from tutor.explain import recent

        reply_text = ""
        for reply_text in stream_reply(tutor, text, past):
            yield reply_text, past
        turn = [{"role": "user", "content": text}, {"role": "assistant", "content": reply_text}]
        yield reply_text, recent([*past, *turn])  # only what the model will read again is kept

    def quiz_api(topic_text: str, n: float, difficulty: str) -> Iterator[tuple[str, QuizSession]]:
        """Yield the quiz JSON as it grows; the last value is the whole quiz. The quiz is this client's."""
        from quizgen import export

        if quiz_agent is None:
            raise gr.Error("quizzes are unavailable on this server: it was started without the quiz generator")
        for state in write_quiz(quiz_agent, quiz_request(topic_text, n, difficulty)):
            yield export.to_json(state.quiz), state

    def answer_api(index: float, choice: str, state: QuizSession) -> str:
        """Grade ``choice`` (A-D) for question ``index`` (1-based) of this client's quiz; feedback as JSON."""
        try:
            fb = state.answer(int(index) - 1, choice or "")
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        return json.dumps(dataclasses.asdict(fb) | {"score": state.score})

    chat.click(chat_api, [message, history], [reply, history], api_name="chat", **lane)
    quiz.click(quiz_api, [topic, count, level], [quiz_json, session], api_name="quiz", **lane)
    answer.click(answer_api, [number, letter, session], [feedback], api_name="answer", concurrency_limit=None)


# ---------------------------------------------------------------- serving: `ta serve` and `python app.py`


def make_programs(model: Any) -> tuple[Tutor, QuizAgent]:
    """The tutor and the quiz agent over ``model`` (the page borrows the model; it never closes it)."""
    from quizgen.program import QuizAgent
    from tutor.explain import Tutor

    return Tutor(model), QuizAgent(model)


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does); True when applied.

    glibc gives each thread that allocates its own arena, and Gradio runs requests on a pool of up to 40
    threads: with 8 concurrent clients resident memory grew 12% after warm-up (scripts/app_load.py); with 2
    arenas it grew 8% and was flat after the first dozen requests. No effect off glibc.
    """
    import ctypes
    import ctypes.util

    m_arena_max = -8  # from glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(m_arena_max, arenas))
    except (OSError, AttributeError):
        return False


def keep_no_call_history() -> None:
    """Stop DSPy recording every model call (prompt, reply) in its in-memory histories.

    DSPy keeps up to 10,000 calls globally and per LM: in a server that answers for days that is memory
    growing with every request, holding students' questions. ``lm.inspect_history()`` is for debugging a
    program, not for serving it. Call it from the thread that starts the server (DSPy's rule for configure).
    """
    import dspy

    dspy.configure(disable_history=True)


def launch(demo: Any, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Start the server: no share link, uploads capped, no server-side rendering (it would need Node)."""
    import gradio as gr

    limit_malloc_arenas()  # before the server's worker threads start allocating
    keep_no_call_history()
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        max_file_size=MAX_UPLOAD,
        show_error=True,
        ssr_mode=False,
        prevent_thread_lock=not block,
        theme=gr.themes.Soft(),
        css=CSS,
    )


def register(sub: Any) -> None:
    """Add ``serve`` to ``ta`` (the ``serve`` entry point); ``python app.py`` parses the same flags."""
    env = os.environ
    # A Hugging Face Space sets SPACE_ID and reaches the app through its proxy: bind all addresses there.
    host = env.get("TA_HOST") or ("0.0.0.0" if env.get("SPACE_ID") else "127.0.0.1")
    p = sub.add_parser("serve", help="run the web app (chat and quiz)")
    add_model_args(p)
    p.set_defaults(model=env.get("TA_MODEL") or "default", func=cmd_serve)
    p.add_argument("--host", default=host, help=f"address to bind (default: $TA_HOST, else {host})")
    p.add_argument(
        "--port",
        type=int,  # argparse converts a string default too, so a bad $PORT is a usage error, not a traceback
        default=env.get("PORT") or env.get("GRADIO_SERVER_PORT") or "7860",
        help="port (default: $PORT, else $GRADIO_SERVER_PORT, else 7860)",
    )
    p.add_argument(
        "--queue-max",
        type=int,
        default=QUEUE_MAX,
        metavar="N",
        help=f"requests that may wait at once (default: {QUEUE_MAX})",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the model the command line names (never one named by the page) and serve the app until stopped."""
    if args.queue_max < 1:
        raise CLIError(f"--queue-max must be at least 1, got {args.queue_max}")
    try:
        import gradio  # noqa: F401 - checked before the model loads
    except ImportError as exc:
        raise CLIError(f"the web app needs gradio ({exc}): reinstall the project (see README.md)") from exc
    tutor, quiz_agent = make_programs(load_from_args(args))
    launch(build_app(tutor, quiz_agent, queue_max=args.queue_max), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    # `python app.py [flags]` is `ta serve [flags]`: a Space runs it without installing the `ta` command.
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser(prog="python app.py", description="Serve the web app.")
    register(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args(["serve", *sys.argv[1:]])
    try:
        raise SystemExit(arguments.func(arguments))
    except TutorError as exc:
        parser.exit(2, f"app.py: error: {exc}\n")
