"""A real PostgreSQL server for the progress store tests, started and stopped by the test run.

The server binaries come from the ``pgserver`` wheel (PostgreSQL 16, no system package), else from a system
installation on PATH or under /usr/lib/postgresql. PostgreSQL refuses to run as root, so under root the
server runs as ``nobody`` from a folder that user owns; it listens on 127.0.0.1 only, on a free port, with
trust authentication (nothing else can reach a test machine's loopback). Each test gets a schema of its own.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest


def postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: pgserver's wheel first, then a system installation."""
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        wheel = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel / "pg_ctl").exists():
            return wheel
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def reachable_by_others(path: Path) -> bool:
    """Whether a user with no rights of its own can reach ``path``: every folder above it searchable by others."""
    import stat

    for folder in [path, *path.parents]:
        if not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl start on 127.0.0.1 as a non-root user; :meth:`stop` removes everything."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="ta-pg-"))  # under /tmp: a non-root user can reach it
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:
            import pwd

            self.user = "nobody"
            os.chown(self.root, pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
            if not reachable_by_others(self.bin):
                # A checkout in a private folder (``mktemp -d`` makes it 0700) hides the wheel's binaries from
                # ``nobody``: run a copy of the installation (34 MB) from the server's own folder instead.
                # The layout is kept: the binaries find their libraries at $ORIGIN/../../../pgserver.libs.
                install, site = self.bin.parent, self.bin.parent.parent.parent
                copy = self.root / "site" / install.parent.name / install.name
                shutil.copytree(install, copy, symlinks=True, ignore=shutil.ignore_patterns("include"))
                for libs in site.glob(f"{install.parent.name}.libs"):
                    shutil.copytree(libs, self.root / "site" / libs.name, symlinks=True)
                self.bin = copy / "bin"

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            user=self.user,
            cwd=self.root,
        )

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """A running PostgreSQL server's URL (skips when psycopg or the server binaries are missing)."""
    pytest.importorskip("psycopg", reason="pip install 'psycopg[binary]' (the [dev] extra)")
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries: pip install pgserver (the [dev] extra)")
    server = PostgresServer(bin_dir)
    started = time.perf_counter()
    url = server.start()
    print(f"\nPostgreSQL from {bin_dir} up in {time.perf_counter() - started:.2f} s")
    yield url
    server.stop()


def schema_url(url: str) -> str:
    """``url`` with a new, empty schema of its own first on the search path."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{url}?options=-csearch_path%3D{name}"


# ---------------------------------------------------------------- a scripted quiz agent (no model) for app tests


def scripted_question(topic: str, n: int, lesson: str = "Regularization", objective: str | None = None):
    """Question ``n`` of a scripted quiz: key A, a course source in ``lesson``, its own objective."""
    from quizgen.schema import Question, QuizItem, Source

    stem = f"Scripted question {n} about {topic}: which option is the right one?"
    source = Source(
        kb="course", doc=f"{lesson.lower()}.md", headings=(lesson, "Part"), start=0, end=9, quote="Right one."
    )
    question = Question(
        stem=stem,
        options=[f"right {n}", f"wrong {n} b", f"wrong {n} c", f"wrong {n} d"],
        answer="A",
        explanation="Right one.",
        wrong_reasons={"B": "not b.", "C": "not c.", "D": "not d."},
        objective=objective or f"Recognise {topic} {n % 3}",
        source=source,
    )
    return QuizItem(question=question, verified=True)


class ScriptedAgent:
    """A quiz agent without a model: ``request.n`` scripted questions on ``request.topic`` (a lesson of that name)."""

    def stream(self, request, **fields):
        for n in range(request.n):
            yield scripted_question(request.topic, n, lesson=request.topic.title())

    def assemble(self, request, items, seconds=0.0):
        from quizgen.schema import Quiz, QuizMetadata

        return Quiz(topic=request.topic, questions=list(items), metadata=QuizMetadata(extra={"kb": request.kb}))
