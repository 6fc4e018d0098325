"""The Hugging Face Space's install path: requirements.txt alone, into a fresh virtualenv, then ``python app.py``.

A Space installs requirements.txt (not the project) and runs ``python app.py`` from the repository, so this test does
the same: ``pip install --no-cache-dir -r requirements.txt`` (llama-cpp-python builds from source with the portable
flags the file carries: several minutes), then the app from the checkout on a free port, answering its page and one
course chat. Slow tier (``-m slow``); it needs the package registries (a missing network is a skip with the reason,
a failure under TA_CI=1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import need

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.real_model]


def _registry_reachable(scratch: Path) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-q", "-d", str(scratch), "six"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def space_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with requirements.txt installed, as a Space builds it."""
    if not _registry_reachable(tmp_path_factory.mktemp("probe")):
        need("network", "no package registry reachable: the requirements.txt install needs one")
    venv = tmp_path_factory.mktemp("space") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True, timeout=600)
    started = time.monotonic()
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-cache-dir", "-r", str(ROOT / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    print(f"\nrequirements.txt installed in {time.monotonic() - started:.0f} s")
    return python


def test_requirements_txt_alone_serves_the_app(space_python: Path, tmp_path: Path) -> None:
    # Nothing of the project is installed: app.py imports tutor/, quizgen/ ... from the checkout, as on a Space.
    probe = subprocess.run(
        [space_python, "-c", "import importlib.util as u; print(u.find_spec('tutor') is None)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert probe.stdout.strip() == "True", "the Space's environment must not hold the project itself"
    imports = subprocess.run(
        [space_python, "-c", "import app, tutor, quizgen, llama_cpp; print(llama_cpp.__version__)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert imports.returncode == 0, imports.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "TA_DATA_DIR": str(tmp_path / "data"), "SPACE_ID": "test/ml-tutor"}
    env.pop("TA_HOST", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [space_python, "app.py", "--threads", "1"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the app did not answer in 300 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    if page.status == 200:
                        break
            except OSError:
                time.sleep(1)
        from gradio_client import Client

        reply = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "What does dropout do during training?", "course", api_name="/chat"
        )
        assert "regularization.md" in reply, reply
    finally:
        server.terminate()
        server.wait(timeout=60)
    shutil.rmtree(space_python.parent.parent, ignore_errors=True)  # a whole environment: do not keep it
