"""The web page students use: chat with the teaching assistant, take quizzes, compare benchmark runs.

``build_app(tutor, quiz_agent)`` returns a ``gr.Blocks`` with the programs injected; ``serve()`` loads a model
and launches it (``ta serve``); ``python app.py`` does the same, which is how a Hugging Face Space runs it.

Every event that touches the model shares one ``concurrency_id``, so one loaded model answers one request at a
time and the rest wait in Gradio's bounded queue. The page never names a model: the model is chosen at start-up
by whoever runs the server, and uploaded files are only ever read as text.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("app")

MODEL_LANE = "model"  # the concurrency_id of every event that runs the model: one request at a time per model
QUEUE_MAX = 16  # requests waiting beyond this are told the app is busy instead of waiting for minutes
MAX_UPLOAD = "1mb"  # source texts are short; a larger upload is refused before it reaches the app
SOURCE_MAX_CHARS = 50_000  # the quiz agent reads at most this much pasted or uploaded source text (a chapter)
MAX_QUESTIONS = 20
HISTORY_MESSAGES = 8  # the model sees the last 4 exchanges: older turns would crowd its 2k-token context
DIFFICULTIES = ("easy", "medium", "hard")
EXPORT_FORMATS = {"json": ".json", "gift": ".gift.txt", "qti": ".qti.zip", "anki": ".anki.txt"}
EXAMPLES = [
    "What is overfitting?",
    "Explain gradient descent with a small example.",
    "What is the difference between precision and recall?",
]
CSS = ".feedback-right {color: #1a7f37} .feedback-wrong {color: #b42318}"


# ---------------------------------------------------------------- running model streams


def in_one_thread(make: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """Iterate ``make()`` on a thread of its own and yield what it yields.

    Gradio runs each step of a sync generator on whichever pool thread is free, but a model stream holds the
    model's lock across steps, and a lock must be released by the thread that took it. Stepping (and closing)
    the stream on one thread keeps that true; when the page stops listening, the stream stops at its next piece.
    """
    pieces: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            stream = make()
            try:
                for piece in stream:
                    pieces.put((True, piece))
                    if stop.is_set():
                        break
            finally:
                getattr(stream, "close", lambda: None)()
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


# ---------------------------------------------------------------- chat history: browser blocks and client strings


def message_text(content: Any) -> str:
    """The text of one message's content: a string, a content block, or a list of blocks (files are dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", "")) if content.get("type", "text") == "text" else ""
    if isinstance(content, list | tuple):
        return "".join(message_text(block) for block in content)
    return ""


def normalize_history(history: Sequence[Any] | None) -> list[dict[str, str]]:
    """Chat history as plain ``{"role", "content": str}`` messages.

    The browser sends Gradio 6 messages whose content is a list of blocks (``[{"type": "text", "text": ...}]``);
    gradio_client and our own state send plain strings; old-style ``(user, assistant)`` pairs are accepted too.
    Empty and non-text messages are dropped: the model only ever sees text.
    """
    messages: list[dict[str, str]] = []
    for turn in history or []:
        if isinstance(turn, dict):
            pairs = [(str(turn.get("role", "")), turn.get("content"))]
        else:
            user, assistant = turn
            pairs = [("user", user), ("assistant", assistant)]
        for role, content in pairs:
            text = message_text(content).strip()
            if role in ("user", "assistant") and text:
                messages.append({"role": role, "content": text})
    return messages


def recent(messages: list[dict[str, str]], limit: int = HISTORY_MESSAGES) -> list[dict[str, str]]:
    """The last ``limit`` messages, starting at a user message so no answer is cut from its question."""
    tail = messages[-limit:] if limit > 0 else []
    while tail and tail[0]["role"] != "user":
        tail = tail[1:]
    return tail


def stream_reply(tutor: Any, message: str, history: Sequence[Any] | None) -> Iterator[str]:
    """The growing reply to ``message``; a bad question becomes a message on the page, not a stack trace."""
    import gradio as gr

    past = recent(normalize_history(history))
    try:
        text = ""
        for piece in in_one_thread(lambda: tutor.stream(message, past)):
            text += piece
            yield text
    except ValueError as exc:
        raise gr.Error(str(exc)) from exc


# ---------------------------------------------------------------- the quiz one student is taking


class QuizRun:
    """One student's quiz (kept in ``gr.State``): the questions written so far, answers given, the one on screen."""

    def __init__(self, topic: str = "", n: int = 0, difficulty: str = "medium", source: str | None = None) -> None:
        self.topic, self.n, self.difficulty, self.source = " ".join(topic.split()), n, difficulty, source
        self.items: list[Any] = []
        self.feedback: dict[int, Any] = {}
        self.current = 0
        self.finished = False

    def quiz(self) -> Any:
        """The questions so far as a ``quizgen.Quiz``."""
        from quizgen import Quiz

        extra = {"requested": self.n, "finished": self.finished, "verified": [i.verified for i in self.items]}
        meta = {"difficulty": self.difficulty, "source": (self.source or "")[:200] or None, "extra": extra}
        return Quiz(topic=self.topic, questions=list(self.items), metadata=meta)

    def answer(self, index: int, letter: str) -> Any:
        """Grade ``letter`` for question ``index`` (0-based) through quizgen's grader; remembered for the score."""
        if not 0 <= index < len(self.items):
            raise ValueError(f"there is no question {index + 1}: the quiz has {len(self.items)} so far")
        if letter not in "ABCD" or len(letter) != 1:
            raise ValueError(f"answer with one of A, B, C or D, not {letter!r}")
        from quizgen import QuizSession

        self.feedback[index] = QuizSession(self.quiz()).answer(index, letter)
        return self.feedback[index]

    @property
    def score(self) -> int:
        """Right answers so far."""
        return sum(1 for fb in self.feedback.values() if fb.correct)


def _question(item: Any) -> Any:
    return getattr(item, "question", item)


def _verified(item: Any) -> bool:
    return bool(getattr(item, "verified", getattr(_question(item), "verified", True)))


def question_markdown(run: QuizRun, index: int) -> str:
    """One question as Markdown: progress, an unverified mark when the checker could not confirm it, the stem."""
    if not run.items:
        return "*No quiz yet: choose a topic and press **Generate quiz**.*"
    item = run.items[index]
    head = f"**Question {index + 1} of {run.n}**"
    if not _verified(item):
        issues = "; ".join(getattr(item, "issues", None) or getattr(_question(item), "issues", None) or [])
        head += f"  \n⚠️ *Unverified: the checker could not confirm this question{': ' + issues if issues else ''}.*"
    return f"{head}\n\n{_question(item).stem}"


def option_choices(run: QuizRun, index: int) -> list[tuple[str, str]]:
    """The four options as (label, letter) pairs for a radio group."""
    if not run.items:
        return []
    return [
        (f"{letter}. {text}", letter) for letter, text in zip("ABCD", _question(run.items[index]).options, strict=True)
    ]


def feedback_markdown(run: QuizRun, index: int) -> str:
    """Right or wrong, the right answer, its explanation, and why the chosen option was wrong."""
    fb = run.feedback.get(index)
    if fb is None:
        return ""
    options = _question(run.items[index]).options
    right = f"{fb.right_letter}. {options['ABCD'.index(fb.right_letter)]}"
    if fb.correct:
        return f'<div class="feedback-right">✓ <b>Correct!</b> {right}</div>\n\n{fb.explanation}'
    why = f"\n\n**Why your choice is wrong:** {fb.why_wrong}" if fb.why_wrong else ""
    wrong = f'<div class="feedback-wrong">✗ <b>Not quite.</b> The right answer is {right}</div>'
    return f"{wrong}\n\n{fb.explanation}{why}"


def score_markdown(run: QuizRun) -> str:
    """The running score, or the final score once every question is answered."""
    if not run.items:
        return ""
    answered = len(run.feedback)
    if run.finished and answered == len(run.items):
        return f"### Final score: {run.score} / {answered}"
    return f"**Score:** {run.score} / {answered} answered ({len(run.items)} of {run.n} questions written)"


def read_source(pasted: str | None, upload: str | None) -> str | None:
    """Pasted text, else the uploaded file's text (read as text only, capped); None when there is neither."""
    text = (pasted or "").strip()
    if not text and upload:
        with open(upload, encoding="utf-8", errors="replace") as f:
            text = f.read(SOURCE_MAX_CHARS).strip()
    return text[:SOURCE_MAX_CHARS] or None


def write_quiz(agent: Any, run: QuizRun) -> Iterator[QuizRun]:
    """Fill ``run`` with questions as the agent finishes them; yields after each one."""
    import gradio as gr

    try:
        items = in_one_thread(
            lambda: agent.stream(run.topic, n=run.n, difficulty=run.difficulty, source_text=run.source)
        )
        for item in items:
            run.items.append(item)
            yield run
    except ValueError as exc:
        raise gr.Error(str(exc)) from exc
    finally:
        run.finished = True


def export_quiz(run: QuizRun, fmt: str, folder: Path) -> str:
    """Write the quiz in ``fmt`` under ``folder``; returns the file's path for download."""
    from quizgen import export

    if not run.items:
        raise ValueError("there is no quiz to download yet: generate one first")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    data = export.dumps(run.quiz(), fmt)
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


def _quiz_agent(quiz_agent: Any) -> Any:
    """An agent instance from an agent or a factory (a fresh agent per quiz keeps no state between students)."""
    if quiz_agent is None:
        return None
    return quiz_agent if hasattr(quiz_agent, "stream") else quiz_agent()


def build_app(
    tutor: Any,
    quiz_agent: Any | Callable[[], Any] | None = None,
    *,
    runs_dir: str | Path = "runs",
    queue_max: int = QUEUE_MAX,
    title: str = "AI teaching assistant",
) -> Any:
    """The Gradio app: Tutor, Quiz and Results tabs, plus the ``/chat``, ``/quiz`` and ``/answer`` API.

    Args:
        tutor: a ``tutor.explain.Tutor`` (anything with ``.stream(question, history)`` yielding text).
        quiz_agent: a ``quizgen.QuizAgent``, a zero-argument factory making one, or None (the quiz tab then says
            quizzes are unavailable).
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
            run = gr.State(QuizRun())
            _quiz_tab(gr, quiz_agent, run, lane, free, files)
        with gr.Tab("Results", id="results"):
            _results_tab(gr, runs_root, free, files)
        _api(gr, tutor, quiz_agent, run, lane)
        gr.Markdown(
            f"<small>One model answers one request at a time; up to {queue_max} wait in line, and beyond that "
            "the page says it is busy: try again in a minute.</small>"
        )
    demo.queue(max_size=queue_max, default_concurrency_limit=1)
    return demo


def _chat_tab(gr: Any, tutor: Any, lane: dict, free: dict) -> None:
    chatbot = gr.Chatbot(label="Teaching assistant", elem_id="chat", height=420, buttons=["copy"])
    with gr.Row():
        box = gr.Textbox(placeholder="Ask a question or name a concept…", show_label=False, scale=5, elem_id="ask")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        stop = gr.Button("Stop", scale=1, elem_id="stop")
        clear = gr.Button("Clear chat", scale=1, elem_id="clear")
    gr.Examples(EXAMPLES, inputs=[box], label="Example questions")

    def respond(message: str, history: list) -> Iterator[tuple[list, str]]:
        past = normalize_history(history)
        shown = [*past, {"role": "user", "content": message}]
        for text in stream_reply(tutor, message, past):
            yield [*shown, {"role": "assistant", "content": text}], ""

    events = [
        trigger(respond, [box, chatbot], [chatbot, box], api_visibility="private", **lane)
        for trigger in (box.submit, send.click)
    ]
    stop.click(None, cancels=events, **free)
    # Cancel first, then clear: cleared in the same event, a cancelled stream's last update could land after it.
    clear.click(None, cancels=events, **free).then(lambda: ([], ""), None, [chatbot, box], **free)


def _quiz_tab(gr: Any, quiz_agent: Any, run: Any, lane: dict, free: dict, files: Path) -> None:
    if quiz_agent is None:
        gr.Markdown("⚠️ **Quizzes are unavailable on this server**: the quiz generator (quizgen) is not installed.")
        return
    with gr.Row():
        topic = gr.Textbox(label="Topic", placeholder="e.g. overfitting", scale=3, elem_id="topic")
        count = gr.Slider(1, MAX_QUESTIONS, value=10, step=1, label="Questions", scale=2, elem_id="count")
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
            question = gr.Markdown(question_markdown(QuizRun(), 0), elem_id="quiz-question")
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
    view = [question, options, feedback]

    def show(state: QuizRun, index: int) -> tuple:
        state.current = index
        return (
            question_markdown(state, index),
            gr.update(choices=option_choices(state, index), value=None),
            (feedback_markdown(state, index)),
        )

    def start(topic_text: str, n: float, difficulty: str, pasted: str, path: str | None) -> Iterator[tuple]:
        state = QuizRun(topic_text or "", int(n), difficulty, read_source(pasted, path))
        yield state, f"Writing question 1 of {state.n}…", *show(state, 0), ""
        for _ in write_quiz(_quiz_agent(quiz_agent), state):
            done = len(state.items)
            note = "" if done == state.n else f" Writing question {done + 1}…"
            first = show(state, 0) if done == 1 else (gr.skip(),) * 3  # never reset what the student is doing
            yield state, f"{done} of {state.n} questions ready.{note}", *first, score_markdown(state)
        yield state, f"All {len(state.items)} questions ready.", *(gr.skip(),) * 3, score_markdown(state)

    def grade(state: QuizRun, letter: str | None) -> tuple[str, str]:
        if not state.items:
            raise gr.Error("generate a quiz first")
        if not letter:
            raise gr.Error("pick an answer (A-D) first")
        state.answer(state.current, letter)
        return feedback_markdown(state, state.current), score_markdown(state)

    def step(state: QuizRun, delta: int) -> tuple:
        if not state.items:
            return (gr.skip(),) * 3
        return show(state, max(0, min(len(state.items) - 1, state.current + delta)))

    def save(state: QuizRun, kind: str) -> str:
        try:
            return export_quiz(state, kind, files)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc

    inputs = [topic, count, level, source, upload]
    started = generate.click(start, inputs, [run, progress, *view, score], api_visibility="private", **lane)
    stop.click(None, cancels=[started], **free)
    check.click(grade, [run, options], [feedback, score], **free)
    prev.click(lambda s: step(s, -1), [run], view, **free)
    nxt.click(lambda s: step(s, 1), [run], view, **free)
    download.click(save, [run, fmt], [file], **free)


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


def _api(gr: Any, tutor: Any, quiz_agent: Any, run: Any, lane: dict) -> None:
    """Endpoints for gradio_client, on hidden components: ``/chat``, ``/quiz``, ``/answer``."""
    history = gr.State([])
    with gr.Column(visible=False):
        message, reply, chat = gr.Textbox(), gr.Textbox(), gr.Button()
        topic, count, level = gr.Textbox(), gr.Number(precision=0), gr.Textbox()
        quiz_json, quiz = gr.Textbox(), gr.Button()
        number, letter, feedback, answer = gr.Number(precision=0), gr.Textbox(), gr.Textbox(), gr.Button()

    def chat_api(text: str, past: list) -> Iterator[tuple[str, list]]:
        """Stream the reply to ``text``; this client's history is kept on the server (gr.State)."""
        reply_text = ""
        for reply_text in stream_reply(tutor, text, past):
            yield reply_text, past
        turn = [{"role": "user", "content": text}, {"role": "assistant", "content": reply_text}]
        yield reply_text, recent([*past, *turn])  # only what the model will read again is kept

    def quiz_api(topic_text: str, n: float, difficulty: str) -> Iterator[tuple[str, QuizRun]]:
        """Yield the quiz JSON as it grows; the last value is the whole quiz. The quiz is this client's."""
        from quizgen import export

        if quiz_agent is None:
            raise gr.Error("quizzes are unavailable on this server: quizgen is not installed")
        state = QuizRun(topic_text or "", int(n or 10), (difficulty or "medium").strip())
        for _ in write_quiz(_quiz_agent(quiz_agent), state):
            yield export.to_json(state.quiz()), state
        yield export.to_json(state.quiz()), state

    def answer_api(index: float, choice: str, state: QuizRun) -> str:
        """Grade ``choice`` (A-D) for question ``index`` (1-based) of this client's quiz; feedback as JSON."""
        try:
            fb = state.answer(int(index) - 1, (choice or "").strip().upper())
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        fields = ("correct", "right_letter", "explanation", "why_wrong")
        return json.dumps({name: getattr(fb, name) for name in fields} | {"score": state.score})

    chat.click(chat_api, [message, history], [reply, history], api_name="chat", **lane)
    quiz.click(quiz_api, [topic, count, level], [quiz_json, run], api_name="quiz", **lane)
    answer.click(answer_api, [number, letter, run], [feedback], api_name="answer", concurrency_limit=None)


# ---------------------------------------------------------------- serving


def make_programs(model: Any) -> tuple[Any, Any]:
    """The tutor and a quiz-agent factory over ``model``; the factory is None when quizgen is not installed."""
    from tutor.explain import Tutor

    try:
        from quizgen import QuizAgent
    except ImportError as exc:
        log.warning("the quiz tab is disabled: %s", exc)
        return Tutor(model), None
    return Tutor(model), lambda: QuizAgent(model)


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
    try:
        import dspy
    except ImportError:
        return
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


def serve(
    model: str = "default",
    backend: str | None = None,
    adapter: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    runs_dir: str | Path = "runs",
    queue_max: int = QUEUE_MAX,
) -> int:
    """Load the model named on the command line (never one named by the page) and serve the app until stopped."""
    from tutor.models import load_model

    tutor, quiz_agent = make_programs(load_model(model, backend=backend, adapter=adapter))
    launch(build_app(tutor, quiz_agent, runs_dir=runs_dir, queue_max=queue_max), host=host, port=port)
    return 0


if __name__ == "__main__":
    # A Hugging Face Space runs `python app.py` and reaches the app through its proxy: bind all addresses there.
    logging.basicConfig(level=logging.INFO)
    on_space = bool(os.environ.get("SPACE_ID"))
    raise SystemExit(
        serve(
            model=os.environ.get("TA_MODEL", "default"),
            host=os.environ.get("TA_HOST", "0.0.0.0" if on_space else "127.0.0.1"),
            port=int(os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", "7860"))),
        )
    )
