"""``ta users`` and ``ta review`` on a real store file: passwords from stdin, the quiz's feedback, rescheduled cards."""

from __future__ import annotations

import argparse
import io
import re
from datetime import UTC, datetime

import pytest
from progress_fixtures import scripted_question

from tutor.cli import CLIError
from tutor.errors import InputError
from tutor.progress.accounts import verify_password
from tutor.progress.cli import register
from tutor.progress.store import open_store
from tutor.progress.tracker import Progress


@pytest.fixture
def ta(tmp_path, monkeypatch):
    """Run ``ta users ...`` / ``ta review ...`` in-process with ``stdin`` text (not a terminal)."""
    monkeypatch.setenv("TA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TA_DATABASE_URL", raising=False)

    def run(argv: list[str], stdin: str = "") -> int:
        parser = argparse.ArgumentParser(prog="ta")
        register(parser.add_subparsers(dest="command"))
        args = parser.parse_args(argv)
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return args.func(args)

    return run


def test_users_add_reads_one_line_of_stdin_and_stores_only_a_salted_hash(ta, tmp_path, capsys):
    assert ta(["users", "add", "ada"], "correct horse\n") == 0
    assert ta(["users", "add", "tess", "--teacher"], "correct horse\n") == 0
    assert ta(["users", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ada", "tess\tteacher"]
    ada, tess = open_store().users()
    assert ada.password.startswith("scrypt$") and "correct horse" not in ada.password
    assert ada.password != tess.password, "the same password, salted differently"
    assert verify_password("correct horse", ada.password) and not verify_password("correct horse\n", ada.password)
    assert b"correct horse" not in (tmp_path / "progress.db").read_bytes()

    with pytest.raises(CLIError, match="already a user named 'ada'"):
        ta(["users", "add", "ada"], "another one\n")
    with pytest.raises(InputError, match="at least 8 characters"):
        ta(["users", "add", "bob"], "short\n")
    with pytest.raises(InputError, match="lower-case letters"):
        ta(["users", "add", "Bob Smith"], "long enough\n")
    with pytest.raises(CLIError, match="no password on standard input"):
        ta(["users", "add", "bob"], "")
    assert ta(["users", "passwd", "ada"], "a new password\n") == 0
    assert verify_password("a new password", open_store().user("ada").password)


def test_review_asks_the_due_cards_with_the_quiz_feedback_and_reschedules_them(ta, capsys):
    ta(["users", "add", "ada"], "correct horse\n")
    store = open_store()
    progress = Progress(store, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))  # long ago: due by now
    from quizgen.grade import QuizSession
    from quizgen.schema import Quiz

    session = QuizSession(
        Quiz(topic="dropout", questions=[scripted_question("dropout", n, "Dropout") for n in range(3)])
    )
    for n, letter in enumerate("ABB"):
        assert progress.answer("ada", session, n, letter).saved

    with pytest.raises(CLIError, match="wrong user name or password"):
        ta(["review", "--user", "ada"], "wrong horse\n")
    assert ta(["review", "--user", "ada"], "correct horse\nB\nA\nq\n") == 0
    out = capsys.readouterr().out
    assert "3 cards due" in out and "[Dropout] Scripted question" in out
    # The reason for B stands beside B; the right answer's explanation beside A.
    assert re.search(r"Not quite: you chose B \(wrong \d b\)\. not b\.\nThe answer is A \(right \d\)\. ", out), out
    assert "Correct." in out
    assert out.count("Source: dropout.md › Dropout › Part") == 2
    assert "Reviewed 2: 1 right. 1 still due." in out
    assert len(store.attempts("ada")) == 5
    assert ta(["review", "--user", "ada"], "correct horse\nA\n") == 0
    assert "Reviewed 1: 1 right. 0 still due." in capsys.readouterr().out


ADD_IN_A_TERMINAL = """
import argparse, sys
from tutor.progress.cli import register
parser = argparse.ArgumentParser(prog="ta")
register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_users_add_in_a_terminal_asks_twice_without_echo(tmp_path):
    import os
    import pty
    import sys
    import time
    from pathlib import Path

    env = {**os.environ, "TA_DATA_DIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    env.pop("TA_DATABASE_URL", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: `ta users add ada` on a terminal
        os.execve(sys.executable, [sys.executable, "-c", ADD_IN_A_TERMINAL, "users", "add", "ada"], env)
    seen = b""

    def expect(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while text not in seen and time.monotonic() < deadline:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
        assert text in seen, seen

    expect(b"Password for ada: ")
    os.write(fd, b"terminal secret\n")
    expect(b"Again: ")
    os.write(fd, b"terminal secret\n")
    expect(b"added student ada")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"terminal secret" not in seen, "the password is not echoed"
    store = open_store(str(tmp_path / "progress.db"))
    assert verify_password("terminal secret", store.user("ada").password)
