"""``ta serve`` and ``python app.py`` as processes, on a free port, with the environment a Hugging Face Space sets.

app.py reads ``PORT`` (else ``GRADIO_SERVER_PORT``, else 7860) and binds every address when ``SPACE_ID`` is set (a
Space reaches the app through its proxy), else 127.0.0.1; ``TA_HOST`` overrides both. Each server here loads the real
embedded model, answers the page and its config over HTTP, answers one chat through the API, and stops on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TA = Path(sys.executable).with_name("ta")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_address(port: int) -> str | None:
    """The IPv4 address a socket listens on at ``port`` (from /proc/net/tcp), or None."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    return None


def serve(command: list[str], port: int, tmp_path: Path, **env: str):
    """Start ``command``; wait until it answers on ``port`` (it loads the model first); yield the process."""
    log = (tmp_path / "server.log").open("w")
    # PYTHONFAULTHANDLER: a SIGABRT (stop(), when Ctrl-C did not stop it) prints every thread's stack to the log
    environment = {**os.environ, "TA_DATA_DIR": str(tmp_path / "data"), "PYTHONFAULTHANDLER": "1", **env}
    environment.pop("TA_HOST", None)
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=ROOT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                if page.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    server.kill()
    pytest.fail(f"nothing answered on port {port} in 300 s: {(tmp_path / 'server.log').read_text()[-3000:]}")


def stop(server: subprocess.Popen, log: Path) -> int:
    """Ctrl-C; if the server is still running a minute later, SIGABRT prints its threads' stacks into the log."""
    server.send_signal(signal.SIGINT)
    try:
        return server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGABRT)
        server.wait(timeout=60)
        pytest.fail(f"the server did not stop within 60 s of Ctrl-C; its threads:\n{log.read_text()[-6000:]}")
    finally:
        server.kill()


def check_answers(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as reply:
        config = json.loads(reply.read())
    names = {dep.get("api_name") for dep in config["dependencies"]}
    assert {"chat", "quiz", "answer"} <= names, names
    from gradio_client import Client

    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    reply = client.predict("What does dropout do during training?", "course", api_name="/chat")
    assert "regularization.md" in reply, reply  # answered from the course by the served model, with its source


@pytest.mark.real_model
@pytest.mark.usefixtures("default_sigint")
def test_ta_serve_answers_on_the_port_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    server = serve([str(TA), "serve", "--port", str(port), "--threads", "1"], port, tmp_path)
    try:
        assert listening_address(port) == "127.0.0.1", "off a Space, the app is reachable from this machine only"
        check_answers(port)
    finally:
        code = stop(server, tmp_path / "server.log")
    assert code in (0, 130, -signal.SIGINT), (tmp_path / "server.log").read_text()[-2000:]


@pytest.mark.real_model
@pytest.mark.usefixtures("default_sigint")
def test_python_app_py_reads_port_and_binds_every_address_on_a_space(tmp_path: Path) -> None:
    port = free_port()
    env = {"PORT": str(port), "SPACE_ID": "someone/ml-tutor", "GRADIO_SERVER_PORT": str(free_port())}
    server = serve([sys.executable, "app.py", "--threads", "1"], port, tmp_path, **env)
    try:
        assert listening_address(port) == "0.0.0.0", "a Space's proxy reaches the app on every address"
        check_answers(port)
    finally:
        stop(server, tmp_path / "server.log")


def test_a_bad_port_in_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "app.py"],
        env={**os.environ, "PORT": "http"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "argument --port: invalid int value: 'http'" in done.stderr, done.stderr
