"""The web page's progress parts (only when the server has accounts): Review, My progress and Class tabs, their API.

It lives beside ``app.py`` because it builds page parts: nothing under ``tutor/`` imports gradio or knows the page.

``app.build_app(..., progress=Progress(store))`` adds them; without a progress store the page is the anonymous
one and nothing here runs. Every handler reads the logged-in user from Gradio's request (``request.username``,
set by the ``auth`` login) and never from an input, except where a teacher names a student: then
:meth:`~tutor.progress.tracker.Progress.allowed` decides, and a student asking for someone else gets an error.

Gradio is imported inside the builders, which only ``app.py`` calls. This module has no ``from __future__ import
annotations``: Gradio finds the ``gr.Request`` parameter by evaluating each handler's annotations.
"""

import functools
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quizgen import grade
from quizgen.grade import QuizSession
from tutor.errors import TutorError
from tutor.progress.tracker import Progress, card_session

FREE = {"concurrency_limit": None, "api_visibility": "private"}  # events that never wait for the model
API = {"concurrency_limit": None}  # the same, listed in the API
NOTHING_DUE = "*Nothing to review now.* Cards come back when they are due: answer quiz questions to make more."


def shown(fn: Callable) -> Callable:
    """A handler whose user errors (a TutorError: not logged in, not yours) become a message on the page."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TutorError as exc:
            raise gr.Error(str(exc)) from exc

    return wrapper


def username(request: Any) -> str | None:
    """The logged-in user of a request (None on a page without accounts)."""
    return getattr(request, "username", None)


# ---------------------------------------------------------------- answering a quiz question


def record(progress: Progress | None, request: Any, state: QuizSession, index: int, letter: str) -> dict:
    """Grade an answer and, on a page with accounts, store it: the feedback as a dict (+ ``saved`` with accounts).

    An answer that could not be stored still gets its feedback, and a warning on the page says it was not saved.
    """
    import dataclasses

    import gradio as gr

    if progress is None:
        return dataclasses.asdict(state.answer(index, letter))
    done = progress.answer(progress.user(username(request)).name, state, index, letter)
    if not done.saved:
        gr.Warning(f"Your answer was NOT saved: {done.problem}")
    return dataclasses.asdict(done.feedback) | {"saved": done.saved, "problem": done.problem}


def checker(progress: Progress | None) -> Callable:
    """The Quiz tab's Check answer: feedback and score; stored when the page has accounts."""
    import gradio as gr

    @shown
    def check_answer(state: QuizSession, index: int, letter: str | None, request: gr.Request) -> tuple[str, str]:
        if not state.total:
            raise gr.Error("generate a quiz first")
        if not letter:
            raise gr.Error("pick an answer (A-D) first")
        record(progress, request, state, index, letter)
        return grade.feedback_markdown(state, index), grade.score_markdown(state)

    return check_answer


def answerer(progress: Progress | None) -> Callable:
    """The ``/answer`` endpoint: grade ``choice`` for question ``index`` (1-based) of this client's quiz; JSON."""
    import gradio as gr

    @shown
    def answer_api(index: float, choice: str, state: QuizSession, request: gr.Request) -> str:
        """Grade ``choice`` (A-D) for question ``index`` (1-based) of this client's quiz; feedback as JSON."""
        if state is None:
            raise gr.Error("no quiz yet: call /quiz first")
        if isinstance(index, bool) or not isinstance(index, int | float) or not math.isfinite(index):
            raise gr.Error("index is the question's number, from 1")
        fb = record(progress, request, state, int(index) - 1, choice or "")
        return json.dumps(fb | {"score": state.score})

    return answer_api


def weak_spots(progress: Progress) -> Callable:
    """Practice my weak spots: the quiz topic (and knowledge base) of the student's least mastered objective."""
    import gradio as gr

    @shown
    def pick(current_kb: str, request: gr.Request) -> tuple[str, str]:
        weakest = progress.weakest(progress.user(username(request)).name)
        if weakest is None:
            raise gr.Error("answer a few quiz questions first: weak spots come from your answers")
        topic, kb = weakest
        gr.Info(f"A quiz on your weakest spot: {topic}")
        return topic, kb or current_kb

    return pick


# ---------------------------------------------------------------- the tabs


def tabs(gr: Any, progress: Progress) -> Callable[[Any], None]:
    """Add the Review, My progress and Class tabs; a function that wires their page-load events onto the demo."""
    files = Path(tempfile.mkdtemp(prefix="ta-progress-"))
    with gr.Tab("Review", id="review"):
        review_load = _review_tab(gr, progress)
    with gr.Tab("My progress", id="progress"):
        mine = gr.Markdown(elem_id="my-progress")
        refresh = gr.Button("Refresh", size="sm", elem_id="my-refresh")
    with gr.Tab("Class", id="class", visible=False) as class_tab:
        class_load = _class_tab(gr, progress, files)

    @shown
    def my_progress(request: gr.Request) -> str:
        return progress_markdown(progress, progress.user(username(request)).name)

    refresh.click(my_progress, None, [mine], **FREE)

    def on_load(demo: Any) -> None:
        def who(request: gr.Request) -> Any:
            user = progress.store.user(username(request) or "")
            return gr.update(visible=bool(user and user.teacher))

        demo.load(who, None, [class_tab], **FREE)
        demo.load(my_progress, None, [mine], **FREE)
        review_load(demo)
        class_load(demo)

    return on_load


def _review_tab(gr: Any, progress: Progress) -> Callable[[Any], None]:
    status = gr.Markdown(elem_id="review-status")
    card = gr.State("")  # the question key of the card on screen
    question = gr.Markdown(elem_id="review-question")
    options = gr.Radio([], label="Your answer", elem_id="review-options")
    with gr.Row():
        check = gr.Button("Check answer", variant="primary", elem_id="review-check")
        nxt = gr.Button("Next card ▶", elem_id="review-next")
    feedback = gr.Markdown(elem_id="review-feedback")

    @shown
    def next_card(request: gr.Request) -> tuple:
        due = progress.due(progress.user(username(request)).name)
        if not due:
            return NOTHING_DUE, "", "", gr.update(choices=[], value=None), ""
        session = card_session(due[0])
        said = f"**{len(due)} card{'s' if len(due) != 1 else ''} due.** Topic: {due[0].topic}"
        text = grade.question_markdown(session, 0).replace("**Question 1 of 1**", "**Review**", 1)
        return said, due[0].question_key, text, gr.update(choices=grade.option_choices(session, 0), value=None), ""

    @shown
    def check_card(key: str, letter: str | None, request: gr.Request) -> str:
        if not key:
            raise gr.Error("nothing to review now")
        if not letter:
            raise gr.Error("pick an answer (A-D) first")
        session, done = progress.review(progress.user(username(request)).name, key, letter)
        if not done.saved:
            gr.Warning(f"Your answer was NOT saved: {done.problem}")
        return grade.feedback_markdown(session, 0)

    shown_card = [status, card, question, options, feedback]
    nxt.click(next_card, None, shown_card, **FREE)
    check.click(check_card, [card, options], [feedback], **FREE)
    return lambda demo: demo.load(next_card, None, shown_card, **FREE)


def _class_tab(gr: Any, progress: Progress, files: Path) -> Callable[[Any], None]:
    gr.Markdown("Mastery per topic for the class: recency-weighted accuracy of each student's answers.")
    with gr.Row():
        refresh = gr.Button("Refresh", size="sm", elem_id="class-refresh")
        export = gr.Button("Export CSV", size="sm", elem_id="class-export")
    chart = gr.Image(label="Mastery per topic", type="filepath", interactive=False, elem_id="class-chart")
    table = gr.Markdown(elem_id="class-table")
    csv_file = gr.File(label="CSV", interactive=False, height=90, elem_id="class-csv")

    @shown
    def show(request: gr.Request) -> tuple[str | None, str]:
        teacher(progress, request)
        rows = progress.class_mastery()
        return (class_chart(rows, files) if rows else None), class_markdown(rows)

    @shown
    def save(request: gr.Request) -> str:
        teacher(progress, request)
        with tempfile.NamedTemporaryFile("w", dir=files, prefix="class-", suffix=".csv", delete=False) as f:
            f.write(progress.class_csv())
        return f.name

    refresh.click(show, None, [chart, table], **FREE)
    export.click(save, None, [csv_file], **FREE)

    def on_load(demo: Any) -> None:
        def load(request: gr.Request) -> tuple:
            user = progress.store.user(username(request) or "")
            return show(request) if user and user.teacher else (None, "")

        demo.load(load, None, [chart, table], **FREE)

    return on_load


def teacher(progress: Progress, request: Any) -> str:
    """The logged-in teacher's name; an AccessError for a student."""
    from tutor.progress.store import AccessError

    user = progress.user(username(request))
    if not user.teacher:
        raise AccessError("only a teacher sees the class")
    return user.name


# ---------------------------------------------------------------- the API


def api(gr: Any, progress: Progress) -> None:
    """``/progress``, ``/due``, ``/review`` and ``/class``: the same data as the tabs, the same access rules."""
    with gr.Column(visible=False):
        student, out, key, letter = gr.Textbox(), gr.Textbox(), gr.Textbox(), gr.Textbox()
        buttons = [gr.Button() for _ in range(4)]

    @shown
    def progress_api(student_name: str, request: gr.Request) -> str:
        """A student's mastery, quizzes, answers and cards as JSON (empty: your own; another's: teachers only)."""
        return json.dumps(progress.summary(progress.allowed(username(request), student_name)))

    @shown
    def due_api(student_name: str, request: gr.Request) -> str:
        """A student's cards due now (stem and options, no key) as JSON."""
        due = progress.due(progress.allowed(username(request), student_name))
        rows = []
        for c in due:
            q = json.loads(c.question)["question"]
            rows.append({"key": c.question_key, "topic": c.topic, "stem": q["stem"], "options": q["options"]})
        return json.dumps(rows)

    @shown
    def review_api(card_key: str, choice: str, request: gr.Request) -> str:
        """Answer one of your due cards; the feedback as JSON (with ``saved``)."""
        import dataclasses

        _, done = progress.review(progress.user(username(request)).name, card_key, choice or "")
        return json.dumps(dataclasses.asdict(done.feedback) | {"saved": done.saved, "problem": done.problem})

    @shown
    def class_api(request: gr.Request) -> str:
        """The class's mastery per student and topic as CSV (teachers only)."""
        teacher(progress, request)
        return progress.class_csv()

    buttons[0].click(progress_api, [student], [out], api_name="progress", **API)
    buttons[1].click(due_api, [student], [out], api_name="due", **API)
    buttons[2].click(review_api, [key, letter], [out], api_name="review", **API)
    buttons[3].click(class_api, None, [out], api_name="class", **API)


# ---------------------------------------------------------------- what the tabs show


def progress_markdown(progress: Progress, student: str) -> str:
    """A student's page: mastery per topic and objective, quizzes, answers and cards due."""
    data = progress.summary(student)
    if not data["answers"]:
        return f"**{student}**: no answers yet. Take a quiz: every answer is kept, and comes back for review."
    due = sum(c["due_now"] for c in data["cards"])
    right = sum(a["correct"] for a in data["answers"])
    lines = [
        f"**{student}**: {len(data['quizzes'])} quizzes, {len(data['answers'])} answers ({right} right), "
        f"{len(data['cards'])} cards ({due} due now).",
        "",
        "| Topic | Mastery | Answers |",
        "|---|---|---|",
        *[f"| {m['name']} | {m['value']:.0%} | {m['correct']}/{m['answers']} |" for m in data["topics"]],
        "",
        "Weakest objectives: " + "; ".join(f"{m['name']} ({m['value']:.0%})" for m in data["objectives"][:3]),
    ]
    return "\n".join(lines)


def class_markdown(rows: list) -> str:
    """The class table: one row per student and topic."""
    if not rows:
        return "*No answers from the class yet.*"
    lines = ["| Student | Topic | Mastery | Answers |", "|---|---|---|---|"]
    lines += [f"| {s} | {m.name} | {m.value:.0%} | {m.correct}/{m.answers} |" for s, m in rows]
    return "\n".join(lines)


def class_chart(rows: list, folder: Path) -> str:
    """A PNG of mastery per topic: one bar per student (up to 10, else the class mean), the mean marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = sorted({m.name for _, m in rows})
    students = sorted({s for s, _ in rows})
    value = {(s, m.name): m.value for s, m in rows}
    shown_students = students if len(students) <= 10 else []
    fig, ax = plt.subplots(figsize=(8, 1 + 0.6 * len(topics) * max(1, len(shown_students) / 3)))
    height = 0.8 / max(1, len(shown_students))
    for i, s in enumerate(shown_students):
        ys = [t + i * height for t in range(len(topics))]
        ax.barh(ys, [value.get((s, t), 0) for t in topics], height=height, label=s)
    means = [sum(v for (s, t2), v in value.items() if t2 == t) / sum(1 for (_, t2) in value if t2 == t) for t in topics]
    offset = (len(shown_students) - 1) * height / 2 if shown_students else 0
    ax.scatter(means, [t + offset for t in range(len(topics))], marker="|", s=400, color="black", label="class mean")
    ax.set_yticks([t + offset for t in range(len(topics))], topics)
    ax.set_xlim(0, 1)
    ax.set_xlabel("mastery (recency-weighted accuracy)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    with tempfile.NamedTemporaryFile(dir=folder, prefix="class-", suffix=".png", delete=False) as f:
        fig.savefig(f.name, dpi=80)
    plt.close(fig)
    return f.name


def login(progress: Progress) -> Callable:
    """Gradio's ``auth`` callback for ``progress``'s accounts (a coroutine: a slowed login never stalls the page)."""
    from tutor.progress.accounts import Login

    return Login(progress.store).check
