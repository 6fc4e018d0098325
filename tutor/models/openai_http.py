"""The HTTP side of the server backend: one connection pool, bounded requests in flight, retries with backoff.

:class:`Connection` knows nothing of models or constraints: it sends JSON to an OpenAI-compatible server, at most
``max_in_flight`` requests at once, retries what is worth retrying (429/502/503/504, dropped connections) and
turns every other failure into a :class:`~tutor.models.base.ModelError` that says what to do. The model on top
(:mod:`tutor.models.openai`) maps the Model API onto requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tutor.errors import InputError
from tutor.models import openai_wire as wire
from tutor.models.base import ModelError

T = TypeVar("T")
R = TypeVar("R")

RETRY_STATUS = (429, 502, 503, 504)  # overloaded or restarting: worth asking again


class Connection:
    """JSON requests to one server, ``max_in_flight`` at most at once, retried on overload and dropped links."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        max_in_flight: int,
        timeout: float,
        retries: int,
        backoff: float,
        transport: Any = None,
    ) -> None:
        """Open the pool (no request yet); see :class:`tutor.models.openai.OpenAIServerModel` for the arguments."""
        try:
            import httpx
        except ImportError as exc:
            raise ModelError("the server backend needs httpx: `pip install httpx`") from exc
        if max_in_flight < 1:
            raise InputError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.httpx = httpx
        self.url = url.rstrip("/")
        self.root = self.url.removesuffix("/v1")
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.max_in_flight = max_in_flight
        self.label = "the server"  # how errors name it; the model sets its profile's label once detected
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            limits=httpx.Limits(max_connections=max_in_flight + 2, max_keepalive_connections=max_in_flight + 2),
            transport=transport,
        )
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="openai-server")

    def who(self) -> str:
        """The server as errors name it: its flavour and URL."""
        return f"{self.label} at {self.url}"

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        root: bool = False,
        retries: int | None = None,
    ) -> Any:
        """One JSON request to ``path`` (under ``/v1``, or under the server root), retried; errors say what to do."""
        url = (self.root if root else self.url) + path
        httpx = self.httpx
        problem = ""
        tries = (self.retries if retries is None else retries) + 1
        for attempt in range(tries):
            if attempt:
                time.sleep(self._delay(attempt, problem))
            try:
                with self._slots:
                    response = self.client.request(method, url, json=body)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
                    raise ModelError(
                        f"{url} did not answer within {self.timeout:g} s: the server is overloaded or the answer "
                        "is long (raise the timeout, or lower max_tokens)"
                    ) from exc
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}" + wire.retry_after(response)
                continue
            if response.is_error:
                raise ModelError(
                    f"{self.who()} refused {method} {path} (HTTP {response.status_code}): {wire.message(response)}"
                )
            try:
                return response.json()
            except json.JSONDecodeError as exc:
                raise ModelError(f"{url} answered with something that is not JSON: {response.text[:200]!r}") from exc
        raise ModelError(
            f"no answer from {url} after {tries} tries ({problem}): is the server running? "
            "Start it as README.md shows, or check the URL"
        )

    def _delay(self, attempt: int, problem: str) -> float:
        if "retry-after=" in problem:
            return float(problem.rsplit("retry-after=", 1)[1].rstrip(")"))
        return self.backoff * 2 ** (attempt - 1)

    def probe(self, method: str, path: str) -> bool:
        """Whether ``path`` under the server root answers (one try, short timeout): for telling flavours apart."""
        try:
            body = {"input": "a"} if method == "POST" else None
            response = self.client.request(method, self.root + path, json=body, timeout=10.0)
        except self.httpx.HTTPError:
            return False
        return response.is_success

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[str]:
        """The text pieces of a streamed answer (server-sent events), holding one slot until it ends.

        A stream is not retried (its first pieces are already out). One that ends without a finish reason was
        cut short by the server: an error, not a silently shorter answer.
        """
        httpx = self.httpx
        finished = False
        try:
            with self._slots, self.client.stream("POST", self.url + path, json=body) as response:
                if response.is_error:
                    response.read()
                    raise ModelError(
                        f"{self.who()} refused a streamed chat (HTTP {response.status_code}): {wire.message(response)}"
                    )
                for line in response.iter_lines():
                    event = wire.sse_event(line)
                    if event is None:
                        break
                    piece, reason = event
                    finished = finished or reason is not None
                    if piece:
                        yield piece
        except httpx.TransportError as exc:
            raise ModelError(f"{self.who()} dropped a streamed answer ({type(exc).__name__}: {exc})") from exc
        if not finished:
            raise ModelError(
                f"{self.who()} ended a streamed answer before it finished (no finish_reason): it interrupts a stream "
                "when another request arrives (llama-cpp-python's server: start it with --interrupt_requests false)"
            )

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` with up to ``max_in_flight`` requests out at once, results in order."""
        if len(items) <= 1 or self.max_in_flight == 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        """Close the connections and the request pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
