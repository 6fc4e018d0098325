"""A model served from many threads: step each stream on one thread, and keep per-thread memory bounded.

A web server (Gradio) runs each request, and each step of a streaming reply, on whichever thread of its pool is
free. :func:`in_one_thread` keeps a model stream on one thread of its own; :func:`limit_malloc_arenas` stops
glibc from giving each of those pool threads a heap of its own. Neither imports anything heavy.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any


def in_one_thread(make: Callable[[], Generator[Any, None, None]]) -> Iterator[Any]:
    """Iterate ``make()`` on a thread of its own and yield what it yields.

    Gradio runs each step of a sync generator on whichever pool thread is free. A backend that serves one
    request at a time (transformers) holds its lock across a stream's steps, and a lock must be released by the
    thread that took it; stepping (and closing) the stream on one thread keeps that true. (llama.cpp's batching
    scheduler holds no lock across steps, and stepping it on one thread is harmless.) When the consumer stops
    listening (``close()``), the stream stops at its next piece and frees its sequence. An exception in the stream
    is raised in the consumer, on the request's own thread.
    """
    pieces: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            with contextlib.closing(make()) as stream:
                for piece in stream:
                    pieces.put((True, piece))
                    if stop.is_set():
                        break
        except BaseException as exc:  # handed to the consumer, which raises it on the request's thread
            pieces.put((False, exc))
            return
        pieces.put((False, None))

    threading.Thread(target=produce, name="model-stream", daemon=True).start()
    try:
        while True:
            ok, piece = pieces.get()
            if not ok:
                if piece is not None:
                    raise piece
                return
            yield piece
    finally:
        stop.set()


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does); True when applied.

    glibc gives each thread that allocates its own arena, and Gradio runs requests on a pool of up to 40
    threads: with 8 concurrent clients resident memory grew 12% after warm-up (scripts/app_load.py); with 2
    arenas it grew 8% and was flat after the first dozen requests. No effect off glibc. Call it before the
    server's threads start allocating.
    """
    import ctypes
    import ctypes.util

    m_arena_max = -8  # from glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(m_arena_max, arenas))
    except (OSError, AttributeError):
        return False
