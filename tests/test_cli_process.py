"""The installed ``ta`` as a process: exit codes (0, 2, 130), usage errors, every subcommand's --help, and ``ta chat``
and ``ta quiz`` on the real embedded model.

tests/test_cli.py calls ``tutor.cli.main`` in-process; this file runs the console script pip installed, so the entry
point, the ``ta.commands`` plugins as installed, argparse's own exits and the signal handling are what is tested.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

TA = Path(sys.executable).with_name("ta")  # the console script installed beside this interpreter


# At least these; the test runs whatever else the installed packages register (the ``ta.commands`` entry points).
CORE = {
    "ask",
    "chat",
    "generate",
    "models",
    "quiz",
    "quiz-eval",
    "serve",
    "kb",
    "finetune",
    "export",
    "bench",
    "doctor",
}


def ta(*args: str, stdin: str | None = None, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Run the installed ``ta`` with ``args``; one thread for the model (tests share the CPU)."""
    return subprocess.run(
        [str(TA), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    if not TA.is_file():
        pytest.fail(f"no ta console script at {TA}: install the project (pip install -e '.[dev]')", pytrace=False)


def test_no_subcommand_prints_usage_and_exits_2() -> None:
    done = ta()
    assert done.returncode == 2, done
    assert done.stderr.startswith("usage: ta ") and "COMMAND" in done.stderr and done.stdout == ""


def _listed(help_text: str) -> list[str]:
    return re.findall(r"^    (\S+)", help_text, flags=re.MULTILINE)  # "    name   help" under COMMAND


def test_help_exits_0_and_every_subcommand_has_help_that_exits_0() -> None:
    done = ta("--help")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    names = _listed(done.stdout)
    assert CORE <= set(names), sorted(CORE - set(names))
    with ThreadPoolExecutor(max_workers=4) as pool:  # a process start imports each package's CLI: ~1-3 s each
        runs = dict(zip(names, pool.map(lambda name: ta(name, "--help"), names), strict=True))
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stderr[-2000:])
        assert run.stdout.startswith(f"usage: ta {name}"), (name, run.stdout[:200])
        assert "Traceback" not in run.stderr and "skipped the" not in run.stderr, (name, run.stderr)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["nosuch"], {}, "invalid choice: 'nosuch'"),
        (["quiz", "overfitting", "-n", "many"], {}, "argument -n"),
        (["ask", "--backend", "onnx", "hi"], {}, "argument --backend: invalid choice"),
        (["serve", "--queue-max"], {}, "argument --queue-max: expected one argument"),
        (["serve"], {"PORT": "http"}, "argument --port: invalid int value: 'http'"),
    ],
)
def test_usage_errors_exit_2_with_argparse_message(argv, env, message) -> None:
    done = ta(*argv, **env)
    assert done.returncode == 2, (argv, done)
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[0].startswith("usage: ta"), done.stderr


def test_a_mistake_the_user_can_fix_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = ta("ask", "--model", str(tmp_path / "missing.gguf"), "hi")
    assert done.returncode == 2, done
    assert done.stderr.startswith("ta ask: error: ") and "no model at" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = ta("generate", "--schema", str(tmp_path / "missing.json"), "x")
    assert done.returncode == 2 and done.stderr.startswith("ta generate: error: ") and "no schema file" in done.stderr


@pytest.mark.real_model
@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_in_chat_exits_130() -> None:
    chat = subprocess.Popen(
        [str(TA), "chat", "--threads", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},  # SIGABRT below prints every thread's stack
    )
    try:
        banner = chat.stderr.readline()  # printed once the model has loaded, before the first prompt
        assert "Ask about any machine-learning concept" in banner, banner
        for _ in range(60):  # until it has reached input(): under load half a second may not be enough
            time.sleep(0.5)
            chat.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                chat.wait(timeout=0.5)
            if chat.returncode is not None:
                break
        if chat.returncode is None:  # still running after a minute of Ctrl-C: show where it is
            chat.send_signal(signal.SIGABRT)
            chat.wait(timeout=60)
            pytest.fail(f"ta chat ignored a minute of SIGINTs; its threads:\n{chat.stderr.read()[-6000:]}")
        stderr = chat.stderr.read()
        assert chat.returncode == 130, (chat.returncode, stderr[-3000:])
    finally:
        chat.kill()
        chat.wait()
    assert "Traceback" not in stderr


@pytest.mark.real_model
def test_chat_answers_on_the_real_model_and_ends_at_an_empty_line() -> None:
    done = ta("chat", "--threads", "1", "--kb", "course", stdin="What does dropout do?\n\n", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = done.stdout.split("ta> ", 1)[1]
    assert len(answer.strip()) > 20, done.stdout
    assert "dropout" in answer.lower() and "regularization.md" in answer, answer  # a course answer, with its source


@pytest.mark.real_model
def test_quiz_on_the_real_model_prints_one_json_quiz_all_verified() -> None:
    done = ta("quiz", "overfitting", "-n", "2", "--seed", "1", "--threads", "1", "--format", "json", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    quiz = json.loads(done.stdout)  # the whole of stdout is the quiz
    assert len(quiz["questions"]) == 2, "the starter course covers overfitting"
    for item in quiz["questions"]:
        assert item["verified"] is True, item  # a grounded quiz ships verified questions only
        assert item["question"]["source"]["kb"] == "course", item["question"]
