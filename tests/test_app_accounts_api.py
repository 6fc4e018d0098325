"""Accounts on the served app, through gradio_client: logins, who reads what, nothing lost (a scripted quiz agent)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from progress_fixtures import ScriptedAgent, postgres_url  # noqa: F401 - a fixture

import app
import app_serve
from tutor.progress.accounts import Login, hash_password
from tutor.progress.sqlite import SQLiteStore
from tutor.progress.tracker import Progress, for_serving

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {"ada": "ada-secret-1", "bob": "bob-secret-2", "tess": "tess-secret-3"}


class Clock:
    """A test clock: the time the store records, moved on by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Echo:
    def stream(self, question, history=None):
        yield question


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_users(store) -> None:
    for name, password in PASSWORDS.items():
        store.add_user(name, hash_password(password), name == "tess", datetime.now(UTC))


@pytest.fixture
def served(tmp_path):
    store = SQLiteStore(tmp_path / "progress.db")
    add_users(store)
    clock = Clock()
    progress = Progress(store, clock)
    demo = app.build_app(Echo(), ScriptedAgent(), progress=progress)
    port = free_port()
    app_serve.launch(demo, port=port, block=False, auth=Login(store).check)
    yield f"http://127.0.0.1:{port}/", progress, clock
    demo.close()


def login(url: str, name: str, password: str | None = None):
    from gradio_client import Client

    # a long timeout: on a busy machine eight logins at once (scrypt each) outlast httpx's default 5 s
    return Client(url, auth=(name, password or PASSWORDS[name]), verbose=False, httpx_kwargs={"timeout": 120})


def test_a_wrong_password_and_an_unknown_name_get_the_same_generic_error(served):
    url = served[0]
    messages = []
    for name, password in (("ada", "wrong-password"), ("nobody", "ada-secret-1"), ("ADA", "ada-secret-1")):
        with pytest.raises(Exception) as caught:  # gradio_client's error for a refused login
            login(url, name, password)
        messages.append(str(caught.value))
    assert len(set(messages)) == 1, messages
    assert "password" not in messages[0].lower() and "user" not in messages[0].lower(), messages[0]
    assert login(url, "ada").predict("hi", api_name="/chat") == "hi"


def take_quiz(client, topic: str, n: int, right: int) -> list[dict]:
    client.predict(topic, n, "easy", api_name="/quiz")
    return [json.loads(client.predict(i + 1, "A" if i < right else "B", api_name="/answer")) for i in range(n)]


def test_every_progress_endpoint_refuses_another_students_data(served):
    from gradio_client.exceptions import AppError

    url, _, clock = served
    ada, bob, tess = login(url, "ada"), login(url, "bob"), login(url, "tess")
    answers = take_quiz(ada, "dropout", 3, right=1)
    assert [a["saved"] for a in answers] == [True] * 3 and [a["correct"] for a in answers] == [True, False, False]
    take_quiz(bob, "backpropagation", 2, right=2)
    clock.now += timedelta(days=1)  # every card is due

    mine = json.loads(ada.predict("", api_name="/progress"))
    assert len(mine["answers"]) == 3 and len(mine["quizzes"]) == 1 and len(mine["cards"]) == 3
    assert {a["question"].split(" about ")[1].split(":")[0] for a in mine["answers"]} == {"dropout"}
    assert mine["answers"][0]["source"]["doc"] == "dropout.md", "each answer keeps its question's source"
    due = json.loads(ada.predict("", api_name="/due"))
    assert len(due) == 3 and all("answer" not in card for card in due)

    # bob, asking for ada's data, on every endpoint that reads progress
    for endpoint in ("/progress", "/due"):
        with pytest.raises(AppError, match="only your own progress"):
            bob.predict("ada", api_name=endpoint)
    with pytest.raises(AppError, match="not yours"):
        bob.predict(due[0]["key"], "A", api_name="/review")
    with pytest.raises(AppError, match="only a teacher"):
        bob.predict(api_name="/class")
    theirs = json.loads(bob.predict("", api_name="/progress"))
    assert len(theirs["answers"]) == 2 and "dropout" not in json.dumps(theirs)

    # ada reviews her own card; the teacher reads anyone's, and the class
    review = json.loads(ada.predict(due[0]["key"], "A", api_name="/review"))
    assert review["saved"] and review["correct"] and review["source"] == "dropout.md › Dropout › Part"
    assert len(json.loads(ada.predict("", api_name="/due"))) == 2
    assert len(json.loads(tess.predict("ada", api_name="/progress"))["answers"]) == 4
    csv = tess.predict(api_name="/class")
    assert csv.splitlines()[0] == "student,topic,mastery,answers,correct"
    assert {line.split(",")[0] for line in csv.splitlines()[1:]} == {"ada", "bob"}


# (clients, answers each): the 8 x 25 in the slow tier (about a minute on a busy machine), 3 x 4 by default.
# The store's own tests run 8 x 25 concurrent writers, and a writer killed with SIGKILL, in the default tier.
SIZES = [pytest.param(3, 4, id="3x4"), pytest.param(8, 25, id="8x25", marks=pytest.mark.slow)]


@pytest.mark.parametrize(("clients", "answers"), SIZES)
def test_concurrent_clients_store_exactly_every_answer(tmp_path, clients, answers):
    store = SQLiteStore(tmp_path / "progress.db")
    names = [f"s{i}" for i in range(clients)]
    for name in names:
        store.add_user(name, hash_password(f"{name}-password"), False, datetime.now(UTC))
    demo = app.build_app(Echo(), ScriptedAgent(), progress=Progress(store))
    port = free_port()
    app_serve.launch(demo, port=port, block=False, auth=Login(store).check)
    saved: list[bool] = []
    errors: list[BaseException] = []

    def student(name: str) -> None:
        try:
            client = login(f"http://127.0.0.1:{port}/", name, f"{name}-password")
            saved.extend(a["saved"] for a in take_quiz(client, f"topic {name}", answers, right=answers // 2))
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=student, args=(name,)) for name in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        demo.close()
    assert not errors, errors
    assert saved == [True] * (clients * answers)
    assert len(store.attempts(None)) == clients * answers
    assert all(len(store.attempts(name)) == answers for name in names)


SERVER = """
import sys
from progress_fixtures import ScriptedAgent, postgres_url  # noqa: F401 - a fixture
import app
import app_serve
from tutor.progress.accounts import Login
from tutor.progress.tracker import Progress, for_serving
progress = for_serving()
demo = app.build_app(None, ScriptedAgent(), progress=progress)
app_serve.launch(demo, port=int(sys.argv[1]), block=False, auth=Login(progress.store).check)
print("ready", flush=True)
import time
while True:
    time.sleep(60)
"""


@pytest.mark.slow  # two server start-ups (about 20 s on a busy machine): the store's SIGKILL test runs by default
@pytest.mark.parametrize(("clients", "answers"), [(8, 25)])
def test_a_server_killed_mid_answers_loses_no_confirmed_answer_and_a_restart_resumes(tmp_path, clients, answers):
    env = {**os.environ, "TA_DATA_DIR": str(tmp_path), "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}
    env.pop("TA_DATABASE_URL", None)
    store = SQLiteStore(tmp_path / "progress.db")
    names = [f"s{i}" for i in range(clients)]
    for name in names:
        store.add_user(name, hash_password(f"{name}-password"), False, datetime.now(UTC))
    total, kill_after = clients * answers, clients * answers // 3

    def start_server() -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:  # gradio prints its URL first
            if line.strip() == "ready":
                break
        else:
            raise AssertionError("the server did not start")
        return proc, f"http://127.0.0.1:{port}/"

    confirmed: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def student(url: str, name: str, first: int) -> None:
        try:
            client = login(url, name, f"{name}-password")
            client.predict(f"topic {name}", answers, "easy", api_name="/quiz")
            for i in range(first, answers):
                if json.loads(client.predict(i + 1, "A", api_name="/answer"))["saved"]:
                    with lock:
                        confirmed.add((name, i))
        except Exception:  # the server died under it: what it was told is saved is in `confirmed`
            return

    proc, url = start_server()
    threads = [threading.Thread(target=student, args=(url, name, 0)) for name in names]
    for t in threads:
        t.start()
    while len(confirmed) < kill_after:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for t in threads:
        t.join(timeout=60)
    told = set(confirmed)

    def stored() -> set[tuple[str, int]]:
        return {(a.student, int(json.loads(a.question)["question"]["stem"].split()[2])) for a in store.attempts(None)}

    assert kill_after <= len(told) < total, "killed in the middle"
    assert told <= stored(), f"answers confirmed but lost: {sorted(told - stored())}"
    before = stored()
    print(f"\nSIGKILL: {len(told)} answers confirmed, {len(before)} stored (of {total})")

    proc, url = start_server()  # restart: every student carries on where the store says they stopped
    try:
        done = {name: max((i for s, i in before if s == name), default=-1) + 1 for name in names}
        threads = [threading.Thread(target=student, args=(url, name, done[name])) for name in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert stored() == {(name, i) for name in names for i in range(answers)}
    assert len(store.attempts(None)) == len(before) + sum(answers - done[name] for name in names)


def test_without_accounts_the_page_is_anonymous_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TA_DATABASE_URL", raising=False)
    assert for_serving() is None
    assert not (tmp_path / "progress.db").exists(), "serving without accounts creates no store"
    demo = app.build_app(Echo(), ScriptedAgent())
    port = free_port()
    app_serve.launch(demo, port=port, block=False)
    try:
        from gradio_client import Client

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict("dropout", 2, "easy", api_name="/quiz")
        feedback = json.loads(client.predict(1, "A", api_name="/answer"))
        assert feedback["correct"] and "saved" not in feedback
        assert "/progress" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    finally:
        demo.close()
    assert not list(tmp_path.glob("progress.db*")), "no answer stored (the knowledge base may index its course there)"


def test_a_full_disk_is_reported_to_the_client_as_unsaved(tmp_path):
    path = tmp_path / "progress.db"
    add_users(SQLiteStore(path))
    with sqlite3.connect(path) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    store = SQLiteStore(path, max_pages=pages + 2)  # the "disk" fills after a few answers
    demo = app.build_app(Echo(), ScriptedAgent(), progress=Progress(store))
    port = free_port()
    app_serve.launch(demo, port=port, block=False, auth=Login(store).check)
    try:
        ada = login(f"http://127.0.0.1:{port}/", "ada")
        answers = take_quiz(ada, "dropout", 8, right=8)
    finally:
        demo.close()
    saved = [a["saved"] for a in answers]
    assert True in saved and False in saved, saved
    refused = next(a for a in answers if not a["saved"])
    assert refused["correct"] and "not saved: the disk holding" in refused["problem"], "feedback, and why not saved"
    assert len(store.attempts("ada")) == saved.count(True), "exactly the answers reported saved are stored"


def test_two_app_servers_share_one_postgresql_store(postgres_url):  # noqa: F811 - the fixture
    """Two servers (as a deployment behind a load balancer runs them) on one database: an answer on one is a card
    on the other, and the access rules hold on both."""
    from gradio_client.exceptions import AppError
    from progress_fixtures import schema_url

    from tutor.progress.store import open_store

    url = schema_url(postgres_url)
    add_users(open_store(url))
    clock = Clock()
    demos, urls = [], []
    for _ in range(2):
        store = open_store(url)  # each server its own connections
        demo = app.build_app(Echo(), ScriptedAgent(), progress=Progress(store, clock))
        port = free_port()
        app_serve.launch(demo, port=port, block=False, auth=Login(store).check)
        demos.append(demo)
        urls.append(f"http://127.0.0.1:{port}/")
    try:
        answers = take_quiz(login(urls[0], "ada"), "dropout", 2, right=1)
        assert [a["saved"] for a in answers] == [True, True]
        clock.now += timedelta(days=1)
        ada_on_second = login(urls[1], "ada")
        due = json.loads(ada_on_second.predict("", api_name="/due"))
        assert len(due) == 2
        assert json.loads(ada_on_second.predict(due[0]["key"], "A", api_name="/review"))["saved"]
        with pytest.raises(AppError, match="only your own progress"):
            login(urls[1], "bob").predict("ada", api_name="/progress")
        csv = login(urls[0], "tess").predict(api_name="/class")
        assert csv.splitlines()[1].startswith("ada,Dropout,") and csv.count("\n") == 2
    finally:
        for demo in demos:
            demo.close()
