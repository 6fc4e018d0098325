"""The page's API over real HTTP: generated requests to a launched app, through Gradio's own routes.

tests/test_fuzz_api.py calls the endpoint functions as Gradio would; this file sends what a client can send on the
wire, to the routes the page's "Use via API" documents: ``POST /gradio_api/call/<name>`` with ``{"data": [...]}`` (and
``/call/v2/<name>`` with named parameters, the curl snippet's route), then ``GET /gradio_api/call/<name>/<event_id>``
for the event stream. Bodies: any JSON value in ``data`` (wrong types, wrong arity, huge and hostile strings, NaN and
lone surrogates as JSON can carry them), JSON that does not parse, and bytes that are not JSON at all.

Every answer must be one of: an HTTP 4xx (the body did not fit the route), a stream that completes, or an error
event that is the project's message (a ``gr.Error``: Gradio marks it with a title) or Gradio's own check of an input
against its component (a number that is not one, too few values). A 5xx, a dropped connection, a stream that
never ends and an error event from any other exception (a bug in our code: its text, no title) fail. The app runs
in a process of its own on scripted programs (the HTTP handling is under test, not the model); the last test
checks that it is still up and answers a normal ``/chat``.

Found here and fixed in app.py (``api_errors``): Gradio's 500s for an unknown endpoint, a wrong parameter name and an
empty session_hash. Left to Gradio: the stream of an unknown event id (a strict xfail).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzzing import NASTY, budget, json_line, json_values, scratch
from tests.test_fuzz_api import ScriptedAgent, ScriptedTutor

httpx = pytest.importorskip("httpx")
if importlib.util.find_spec("gradio") is None:  # found, not imported: only the server's process imports it
    pytest.skip("the page needs gradio", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
WORK = scratch("http-")
NAMES = ("chat", "quiz", "answer")
SESSION = "fuzz-quiz-taker"  # a session that has a quiz: /answer there reaches the grading
GRADIO_INPUT_CHECKS = ("Could not preprocess input component", "didn't receive enough input values")
HUGE = ["x" * 1_000_000, "é" * 200_000, "\u202e" * 50_000, "\n" * 100_000]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, data: str) -> None:
    """Run the page on scripted programs at ``port`` until interrupted: the server process of this file's tests."""
    import app
    import app_serve

    os.environ["TA_DATA_DIR"] = data
    app_serve.launch(app.build_app(ScriptedTutor(), ScriptedAgent(), lambda name: ScriptedTutor()), port=port)


@dataclass
class Server:
    """The app's process, its Gradio API root and its log."""

    root: str
    process: subprocess.Popen
    log: Path

    def check_alive(self) -> None:
        assert self.process.poll() is None, f"the server died ({self.process.returncode}): {self.tail()}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """The page in a process of its own on a free port, a quiz taken in SESSION; stopped with Ctrl-C at the end.

    A process of its own, not a thread of this one: a request that kills it shows, and its tracebacks (Gradio logs
    every 500) never race pytest's own use of the interpreter (Python 3.11's traceback carets parse source with
    ``ast``, whose recursion counter is shared between threads: "AST constructor recursion depth mismatch").
    """
    port, log = free_port(), WORK / "server.log"
    code = f"from tests.test_fuzz_http import serve; serve({port}, {str(WORK / 'data')!r})"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    up = Server(f"http://127.0.0.1:{port}/gradio_api/", process, log)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            up.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(up.root + "info", timeout=5).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"the app did not answer on port {port} in 180 s: {up.tail()}")
        quiz = {"data": ["dropout", 1, "easy", "none (model only)"], "session_hash": SESSION}
        assert send(up.root, "call/quiz", json.dumps(quiz).encode()) == "complete"
        yield up
        up.check_alive()
    finally:
        process.send_signal(signal.SIGINT)  # Gradio closes, and the scratch folders go at exit
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def parameters(server: Server) -> dict[str, list[str]]:
    """Each endpoint's parameter names, as the app's API info gives them to clients."""
    info = httpx.get(server.root + "info", timeout=30).json()["named_endpoints"]
    return {name: [p["parameter_name"] for p in info[f"/{name}"]["parameters"]] for name in NAMES}


def send(root: str, path: str, body: bytes) -> str:
    """POST ``body`` to ``root + path``; for an accepted call, read its event stream. The outcome, in a few words.

    Raises:
        AssertionError: for a 5xx, or an error event that is neither our message nor Gradio's input check.
    """
    # A fresh connection per request: after a 500 the server closes a kept-alive one, and the next request on it
    # would fail for the previous one's sake.
    with httpx.Client(timeout=60) as client:
        reply = client.post(root + path, content=body, headers={"content-type": "application/json"})
        assert reply.status_code < 500, f"POST {path} {body[:300]!r}: HTTP {reply.status_code} {reply.text[:300]}"
        if reply.status_code != 200:
            return f"HTTP {reply.status_code}"
        event_id = reply.json()["event_id"]
        stream = client.get(f"{root}call/{path.rstrip('/').rsplit('/', 1)[-1]}/{event_id}")
    assert stream.status_code == 200, f"GET the stream of {path} {body[:300]!r}: HTTP {stream.status_code}"
    return outcome(stream.text, f"{path} {body[:300]!r}")


def outcome(text: str, what: str) -> str:
    """Classify an event stream by its last event (see the module docstring)."""
    events = [
        (block.partition("\n")[0].removeprefix("event: "), json.loads(block.partition("\ndata: ")[2] or "null"))
        for block in text.strip().split("\n\n")
        if block.startswith("event: ") and not block.startswith("event: heartbeat")
    ]
    assert events, f"{what}: a stream without an event: {text[:300]!r}"
    kind, data = events[-1]
    if kind == "complete":
        return "complete"
    assert kind == "error", f"{what}: the stream ended on {kind!r}: {text[-300:]!r}"
    message = data.get("error") if isinstance(data, dict) else data
    assert isinstance(message, str) and message.strip(), f"{what}: an error event without a message: {data!r}"
    if isinstance(data, dict) and "title" in data:  # a gr.Error: what on_page makes of a TutorError
        assert "Traceback" not in message, message
        return "error: our message"
    assert any(check in message for check in GRADIO_INPUT_CHECKS), f"{what}: not the project's error: {message[:500]}"
    return "error: Gradio's input check"


values = json_values | st.sampled_from(HUGE) | st.sampled_from(NASTY) | st.sampled_from([1, 2, 0.5, 1e308, -1])
kbs = st.sampled_from(["course", "none (model only)", "", "COURSE", "../course"]) | st.none()
# What each endpoint's parameters plausibly get, so that calls also complete and grade (then: anything at all).
PLAUSIBLE = {
    "chat": [st.text(max_size=30) | st.sampled_from(NASTY), kbs],
    "quiz": [
        st.sampled_from(["dropout", "overfitting", " ", "x" * 200]),
        st.sampled_from([1, 2, 1.0, 2.5, 0, 51, None, "2"]),
        st.sampled_from(["easy", "medium", "hard", "Easy", "", None]),
        kbs,
    ],
    "answer": [st.sampled_from([1, 2, 1.0, 0, -1, None, 10**30]), st.sampled_from(["A", "B", "C", "D", "a", "E", ""])],
}
sessions = st.none() | st.just(SESSION) | st.sampled_from(["", "x" * 1000, "../x"])


@st.composite
def call_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """An endpoint and a ``{"data": [...]}`` body: its parameters (each plausible or anything), or any values."""
    name = draw(st.sampled_from(NAMES))
    if draw(st.booleans()):
        data = [draw(plausible | values) for plausible in PLAUSIBLE[name]]
    else:
        data = draw(st.lists(values, max_size=6))
    body: dict = {"data": data}
    session = draw(sessions)
    if session is not None:
        body["session_hash"] = session
    if draw(st.booleans()):
        body[draw(st.sampled_from(["event_data", "fn_index", "trigger_id", "extra", "data "]))] = draw(values)
    return name, json_line(body).encode()


@budget(60, deadline_s=30)
@given(call_bodies())
@example(("chat", b'{"data": ["hi"]}'))  # the optional knowledge base left out: Gradio's arity check
@example(("chat", b'{"data": ["\\ud800", "course"]}'))  # a lone surrogate, as JSON can write one
@example(("quiz", b'{"data": ["dropout", NaN, "easy", "course"]}'))
@example(("quiz", b'{"data": ["dropout", 1e308, "easy", "course"]}'))
@example(("answer", b'{"data": [1, "A"], "session_hash": "' + SESSION.encode() + b'"}'))
@example(("answer", b'{"data": [[1], {"a": 1}]}'))
def test_any_call_body_is_an_http_error_an_answer_or_a_message(server: Server, drawn: tuple[str, bytes]) -> None:
    name, body = drawn
    event(f"/call/{name}: {send(server.root, f'call/{name}', body)}")


# Bytes that are JSON, almost JSON, or not JSON at all: FastAPI's body parsing, then Gradio's models.
raw_bodies = (
    st.binary(max_size=64)
    | st.sampled_from([b"", b"{", b"{not json", b"[" * 10_000 + b"]" * 10_000, b'{"data": ' + b"[" * 5000, b"\xff\xfe"])
    | json_values.map(lambda v: json_line(v).encode())
    | json_values.map(lambda v: json_line({"data": v}).encode())
    | st.tuples(call_bodies(), st.integers(0, 200)).map(lambda t: t[0][1][: t[1]])  # a body cut short
)


@budget(40, deadline_s=30)
@given(st.sampled_from(NAMES), raw_bodies)
@example("chat", b'{"data": "hi"}')
@example("quiz", b"[" * 10_000 + b"]" * 10_000)
def test_a_body_that_is_not_a_call_is_an_http_error(server: Server, name: str, body: bytes) -> None:
    event(f"raw /call/{name}: {send(server.root, f'call/{name}', body)}")


@budget(30, deadline_s=30)
@given(st.sampled_from(NAMES), st.data())
def test_named_parameters_on_the_curl_route_answer_or_show_a_message(
    server: Server, parameters: dict[str, list[str]], name: str, data: st.DataObject
) -> None:
    """``/call/v2/<name>`` with every parameter named (the route the API page's curl snippet uses), any values."""
    plausible = PLAUSIBLE[name]
    body = {p: data.draw(plausible[i] | values, label=p) for i, p in enumerate(parameters[name])}
    event(f"/call/v2/{name}: {send(server.root, f'call/v2/{name}', json_line(body).encode())}")


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        # Each was a 500, a traceback in the log and a dropped connection before app_serve.api_errors().
        ("call/nope", b'{"data": []}', 404, "this app's API is /chat, /quiz and /answer"),  # FnIndexInferError
        ("call/v2/nope", b"{}", 400, "KeyError: '/nope'"),
        ("call/v2/chat", b'{"txt": "hi"}', 400, "Parameter `txt` is not a valid key-word argument"),
        ("call/v2/quiz", b"{}", 400, "No value provided for required argument: topic_text"),
        ("call/chat", b'{"data": ["hi", "course"], "session_hash": ""}', 400, "the call was not queued"),
    ],
)
def test_an_unknown_endpoint_parameter_or_session_is_a_4xx_saying_why(
    server: Server, path: str, body: bytes, status: int, says: str
) -> None:
    with httpx.Client(timeout=30) as client:
        reply = client.post(server.root + path, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == status and says in reply.json()["detail"], reply.text[:300]


@pytest.mark.xfail(
    strict=True, reason="Gradio 6.31: the stream of an unknown event id is cut off mid-response (a 404 raised after "
    "the response started), not a clean 404; upstream, nothing app.py can change",
)  # fmt: skip
def test_the_stream_of_an_unknown_event_is_a_clean_404(server: Server) -> None:
    with httpx.Client(timeout=30) as client:
        assert client.get(server.root + "call/chat/no-such-event").status_code == 404


def test_after_all_that_the_server_answers_a_normal_chat(server: Server) -> None:
    """Last in this file: whatever came before, the server is up and answers."""
    server.check_alive()
    with httpx.Client(timeout=60) as client:
        reply = client.post(server.root + "call/chat", json={"data": ["What is dropout?", "none (model only)"]})
        assert reply.status_code == 200, f"HTTP {reply.status_code} {reply.text[:300]}: {server.tail()}"
        text = client.get(f"{server.root}call/chat/{reply.json()['event_id']}").text
    assert text.rstrip().endswith('event: complete\ndata: ["ok", null]'), text[-300:]
