"""The one base class of the benchmark errors a user can fix; anything else is our bug and keeps its traceback."""

from __future__ import annotations

from tutor.errors import TutorError


class BenchError(TutorError, ValueError):
    """A benchmark input a user can fix (task, mode, data, run directory); the message says what to do.

    ``ta`` prints it as one line. A ``ValueError`` too, so that callers that caught the old ``DataError``
    and ``RunError`` (and app.py's comparison page) as ``ValueError`` still do.
    """
