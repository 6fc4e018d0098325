"""The fuzz tests' budget and the inputs they share (tests/test_fuzz_*.py).

Budget: every fuzz test runs under :func:`budget`: a fixed number of examples and a per-example deadline (the
default tier: all the fuzz tests together take well under a minute on a loaded machine). ``TA_FUZZ=long``
multiplies every example count by 100 and lifts the deadline (a hang is still caught by the per-call ``timeout``
the tests put around loops that could spin).

The outcome rule of every boundary: an input either works or raises the project's clear error, a
:class:`~tutor.errors.TutorError` whose message says what to do. :func:`clear_error_or_works` runs a call and
returns its value, or None for a TutorError with a readable message; any other exception propagates (a bug: a
traceback the user would see).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tutor.errors import TutorError

LONG = os.environ.get("TA_FUZZ") == "long"
SCALE = 100 if LONG else 1
T = TypeVar("T")


def scratch(prefix: str) -> Path:
    """A fresh folder for one test module's files, under the repository's ``.cache/fuzz`` and removed at exit."""
    root = Path(__file__).resolve().parent.parent / ".cache" / "fuzz"
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def budget(examples: int, deadline_s: float = 2.0) -> settings:
    """Settings for one fuzz test: ``examples`` examples (100x under ``TA_FUZZ=long``) and a per-example deadline."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None if LONG else timedelta(seconds=deadline_s),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


class HangError(Exception):
    """A call ran past :func:`no_hang`'s limit: a parser that loops, or one that is quadratic in its input."""


@contextlib.contextmanager
def no_hang(seconds: float = 10.0) -> Iterator[None]:
    """Raise :class:`HangError` in the calling (main) thread when the block runs longer than ``seconds``.

    Hypothesis' deadline only fails an example after it returns; this stops one that never would.
    """

    def expired(signum: int, frame: object) -> None:
        raise HangError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def clear_error_or_works(call: Callable[[], T]) -> T | None:
    """``call()``'s value, or None when it raised a TutorError with a message; anything else propagates."""
    try:
        return call()
    except TutorError as exc:
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} with an empty message"
        assert "Traceback" not in message, message
        return None


# Strings that have broken parsers somewhere: digits that are not ASCII (str.isdigit() is true, int() may refuse),
# control characters, lone surrogates (JSON can carry them as \ud800), line separators, huge numbers as text.
NASTY = [
    "",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\x00",
    "\x1b[2J",
    "\x0c",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\ud800",
    "\udfff",
    "😀",
    "²",
    "¹",
    "١",
    "𝟙",
    "Ⅳ",
    "0",
    "-1",
    "27",
    "1e999",
    "nan",
    "inf",
    "99999999999999999999",
    "A",
    "a",
    " B ",
    "null",
    "true",
    "[]",
    "{}",
    '"',
    "\\",
    "--",
    "-h",
    "..",
    "../..",
    "/",
    "~",
    "$HOME",
    "%s",
    "{0}",
]
nasty_text = st.sampled_from(NASTY) | st.text(max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | nasty_text
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4), max_leaves=12
)


def mutate(draw: st.DrawFn, row: dict, anything: st.SearchStrategy = json_values) -> dict:
    """``row`` (changed in place) with one value inside it replaced by ``anything`` or deleted; half the time as is."""
    if draw(st.booleans()):
        return row
    paths: list[tuple] = []

    def walk(value: object, path: tuple) -> None:
        paths.append(path)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
        for key, inner in items:
            walk(inner, (*path, key))

    walk(row, ())
    path = draw(st.sampled_from(paths[1:]))
    parent = row
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(anything)
    return row


def json_line(value: Any) -> str:
    """``value`` as one JSON line, NaN and lone surrogates included (JSON text can carry both)."""
    return json.dumps(value, ensure_ascii=True)
