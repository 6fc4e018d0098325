"""tutor.threads: a stream stepped on one thread whatever thread asks, and the malloc arena cap."""

from __future__ import annotations

import platform
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tutor.threads import in_one_thread, limit_malloc_arenas


def test_in_one_thread_steps_and_closes_a_stream_on_one_thread_whatever_thread_asks():
    seen: list[int] = []
    closed = threading.Event()

    def stream():
        try:
            for i in range(100):
                seen.append(threading.get_ident())
                yield i
        finally:
            seen.append(threading.get_ident())
            closed.set()

    wrapped = in_one_thread(stream)
    with ThreadPoolExecutor(4) as pool:  # as Gradio does: each step on whichever pool thread is free
        got = [pool.submit(next, wrapped).result() for _ in range(5)]
        pool.submit(wrapped.close).result()
    assert got == [0, 1, 2, 3, 4]
    assert closed.wait(5), "closing the consumer stops the stream"
    assert len(set(seen)) == 1 and seen[0] != threading.get_ident()


def test_in_one_thread_raises_the_streams_error_in_the_consumer():
    def broken():
        yield "a"
        raise ValueError("model failed: reload it")

    wrapped = in_one_thread(broken)
    assert next(wrapped) == "a"
    with pytest.raises(ValueError, match="reload"):
        next(wrapped)

    def empty():
        yield from ()

    assert list(in_one_thread(empty)) == [], "an empty stream ends the consumer"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_limit_malloc_arenas_applies_on_glibc():
    assert limit_malloc_arenas() is True
