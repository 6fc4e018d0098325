"""The app's API through gradio_client, against a launched app on the real embedded model (and scripted tutors)."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time

import pytest

import app
import app_serve
from quizgen.schema import LETTERS
from tutor.tutors import NO_KB


class RecordingTutor:
    """A real tutor, recording the history each question arrives with (to see whose history it was)."""

    def __init__(self, tutor, calls: list[tuple[str, list]]) -> None:
        self.tutor = tutor
        self.calls = calls

    def stream(self, question, history=None):
        self.calls.append((question, list(history or [])))
        yield from self.tutor.stream(question, history)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(llama_model):
    """The page on the real model: the model-only tutor, the course-grounded ones and the quiz agent, recorded."""
    tutor, agent, grounded = app_serve.make_programs(llama_model)
    calls: list[tuple[str, list]] = []
    demo = app.build_app(RecordingTutor(tutor, calls), agent, lambda name: RecordingTutor(grounded(name), calls))
    port = free_port()
    app_serve.launch(demo, port=port, block=False)
    yield f"http://127.0.0.1:{port}/", calls
    demo.close()


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def test_chat_streams_and_keeps_history_per_client(served):
    url, calls = served
    alice, bob = client(url), client(url)
    job = alice.submit("What is overfitting?", NO_KB, api_name="/chat")  # the model alone streams token by token
    partials = list(job)
    final = job.result()
    assert len(final.strip()) > 20, final
    assert len(partials) >= 3, f"expected a streamed reply, got {len(partials)} updates"
    assert all(b.startswith(a) for a, b in itertools.pairwise(partials)), "each update extends the last"
    assert partials[-1] == final

    alice.predict("Give an example of it.", knowledge_base=NO_KB, api_name="/chat")
    bob.predict("What is a learning rate?", api_name="/chat")
    by_question = {q: h for q, h in calls}
    assert by_question["Give an example of it."] == [
        {"role": "user", "content": "What is overfitting?"},
        {"role": "assistant", "content": final},
    ]
    assert by_question["What is a learning rate?"] == [], "another client's history leaked into bob's"


def test_chat_answers_from_the_course_by_default_with_its_sources(served):
    reply = client(served[0]).predict("What does dropout do during training?", api_name="/chat")
    answer, _, sources = reply.partition("\n\nSources:\n- ")
    assert answer.strip() and sources, reply
    assert "regularization.md" in sources, reply
    off_topic = client(served[0]).predict("Who wrote Pride and Prejudice?", "course", api_name="/chat")
    assert "not in the course material" in off_topic and "Sources:" not in off_topic


def test_chat_rejects_an_empty_question_with_a_message(served):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="empty"):
        client(served[0]).predict("   ", api_name="/chat")
    with pytest.raises(AppError, match="empty"):
        client(served[0]).predict("   ", NO_KB, api_name="/chat")


def test_a_grounded_quiz_carries_each_questions_source_and_grading_names_it(served):
    from quizgen import export

    c = client(served[0])
    quiz = export.from_json(c.predict("dropout", 2, "easy", api_name="/quiz"))  # default: the shipped course
    assert len(quiz.questions) == 2 and quiz.metadata.extra["kb"] == "course"
    for item in quiz.questions:
        source = item.question.source
        assert source is not None and source.kb == "course" and source.doc.endswith(".md"), item.question
        assert item.question.explanation == source.quote, "the explanation is the course sentence, verbatim"
    question = quiz.questions[0].question
    feedback = json.loads(c.predict(1, question.answer, api_name="/answer"))
    assert feedback["correct"] and feedback["source"] == question.source.cite()


def test_quizzes_are_schema_valid_graded_right_and_kept_per_client(served):
    from quizgen import export

    url = served[0]
    alice, bob = client(url), client(url)
    results: dict[str, str] = {}

    def take(name, c, topic, n):
        results[name] = c.predict(topic, n, "easy", api_name="/quiz")

    threads = [
        threading.Thread(target=take, args=("alice", alice, "overfitting in machine learning", 3)),
        threading.Thread(target=take, args=("bob", bob, "the softmax function", 1)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    quizzes = {name: export.from_json(text) for name, text in results.items()}  # validates against the schema
    assert len(quizzes["alice"].questions) == 3 and len(quizzes["bob"].questions) == 1
    assert quizzes["alice"].topic.startswith("overfitting") and quizzes["bob"].topic.startswith("the softmax")

    for name, c in (("alice", alice), ("bob", bob)):
        question = quizzes[name].questions[0].question
        assert len(question.options) == 4 and question.answer in LETTERS
        right = json.loads(c.predict(1, question.answer, api_name="/answer"))
        assert right["correct"] is True and right["right_letter"] == question.answer
        assert right["explanation"] == question.explanation, f"{name} was graded on someone else's quiz"
        wrong_letter = next(letter for letter in LETTERS if letter != question.answer)
        wrong = json.loads(c.predict(1, wrong_letter, api_name="/answer"))
        assert wrong["correct"] is False and wrong["right_letter"] == question.answer
        assert wrong["why_wrong"], "a wrong answer says why it was wrong"


class SlowTutor:
    """A scripted tutor that takes a while: enough to fill a one-place queue."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def stream(self, question, history=None):
        self.started.set()
        for word in ("a", "slow", "scripted", "reply"):
            time.sleep(0.5)
            yield word + " "


class NamedTutor:
    """A scripted tutor that says which knowledge base it answers from."""

    def __init__(self, name: str) -> None:
        self.name = name

    def stream(self, question, history=None):
        yield f"[{self.name}] {question}"


def test_chat_and_quiz_take_a_listed_knowledge_base_never_a_path(tmp_path, monkeypatch):
    from gradio_client.exceptions import AppError

    monkeypatch.setenv("TA_DATA_DIR", str(tmp_path))  # a knowledge.db of its own: only the course is listed

    demo = app.build_app(NamedTutor("model"), None, NamedTutor)
    port = free_port()
    app_serve.launch(demo, port=port, block=False)
    try:
        c = client(f"http://127.0.0.1:{port}/")
        assert c.predict("hi", api_name="/chat") == "[course] hi", "the default: the shipped course"
        assert c.predict("hi", knowledge_base=NO_KB, api_name="/chat") == "[model] hi"
        for bad in ("../../etc/passwd", "/tmp/kb", "no-such-kb"):
            with pytest.raises(AppError, match="choose one of course"):
                c.predict("hi", bad, api_name="/chat")
            with pytest.raises(AppError, match="choose one of course"):
                c.predict("dropout", 2, "easy", bad, api_name="/quiz")
    finally:
        demo.close()


def test_a_full_queue_tells_the_client_it_is_busy():
    from gradio_client.utils import QueueError

    tutor = SlowTutor()
    demo = app.build_app(tutor, None, queue_max=1)
    port = free_port()
    app_serve.launch(demo, port=port, block=False)
    try:
        clients = [client(f"http://127.0.0.1:{port}/") for _ in range(4)]
        outcomes: list[str] = []

        def ask(c):
            try:
                outcomes.append("ok" if c.predict("hi", api_name="/chat") == "a slow scripted reply " else "wrong")
            except QueueError:
                outcomes.append("queue_full")
            except Exception as exc:  # anything else is a failure of the busy path
                outcomes.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
        threads[0].start()
        assert tutor.started.wait(30), "the first request never ran"
        threads[1].start()  # waits in the one-place queue while the first runs (2 s)
        time.sleep(0.3)
        for t in threads[2:]:  # find the queue full
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        demo.close()
    assert sorted(set(outcomes)) == ["ok", "queue_full"], outcomes
    assert outcomes.count("ok") >= 2, "the running request and the one waiting in line are both answered"
