"""llama-cpp-python's own OpenAI-compatible server on a GGUF file, started on this machine (tests and scripts).

The server backend (:mod:`tutor.models.openai`) is meant for servers someone runs elsewhere; this starts one
locally so that backend can be tested and measured against in-process llama.cpp on the same file::

    with LocalServer(embedded.gguf_path(), threads=1) as url:
        model = load_model(f"openai:{url}")

It needs the server's packages (fastapi, uvicorn, sse-starlette, starlette-context, pydantic-settings:
the project's ``dev`` extra).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tutor.models.base import ModelError

SERVER_MODULES = ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


def missing_modules() -> list[str]:
    """The server's packages that are not installed."""
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``python -m llama_cpp.server`` on ``gguf`` at a free port of 127.0.0.1; a context manager yielding its URL."""

    def __init__(self, gguf: str | Path, *, threads: int = 1, alias: str | None = None, n_ctx: int = 4096) -> None:
        """Describe the server; :meth:`start` (or ``with``) runs it.

        Args:
            gguf: the model file.
            threads: llama.cpp threads (prompt and generation).
            alias: the model's name in ``/v1/models`` (default: the file's path).
            n_ctx: the context size.
        """
        self.gguf, self.threads, self.alias, self.n_ctx = Path(gguf), threads, alias, n_ctx
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        self.url = ""

    def command(self, port: int) -> list[str]:
        """The command line; flash attention and micro-batches under 64 tokens as in-process llama.cpp computes.

        With those, a row's logits do not depend on how a prompt was split into batches (nor on what the cache
        held), so the server's log-probabilities equal the in-process ones.
        """
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf)]
        command += ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]
        command += ["--n_ctx", str(self.n_ctx), "--flash_attn", "true", "--n_ubatch", "32"]
        # Its default cuts a streamed answer short whenever another request arrives (the app streams chats).
        command += ["--interrupt_requests", "false", "--host", "127.0.0.1", "--port", str(port)]
        return command + (["--model_alias", self.alias] if self.alias else [])

    def start(self, timeout: float = 120.0) -> str:
        """Start the server and wait until it answers; returns its ``/v1`` URL."""
        import httpx

        if missing := missing_modules():
            raise ModelError(f"llama-cpp-python's server needs {', '.join(missing)}: pip install -e '.[dev]'")
        port = free_port()
        with self.log.open("w") as out:
            self.process = subprocess.Popen(self.command(port), stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/models", timeout=2).is_success:
                    return self.url
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text()[-2000:]
                self.stop()
                raise ModelError(f"llama_cpp.server did not start:\n{tail}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server this object started (and only it), and remove its log."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
