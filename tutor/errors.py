"""The errors a user can fix, under one base class.

``ta`` prints a :class:`TutorError` as one line that says what to do; any other exception is a bug
in this project and keeps its traceback. Each package subclasses :class:`TutorError` for its own
user-facing errors (``ModelError``, ``OutputTypeError``, ``CLIError``, ...), so the command line
catches one class and never hides a bug behind a one-line message.
"""

from __future__ import annotations


class TutorError(Exception):
    """An error the user can fix (a missing file, a bad flag, an invalid input); the message says how."""


class InputError(TutorError, ValueError):
    """A value passed in (a prompt, sampling settings, choices) is not valid; the message says what to pass.

    A ``ValueError`` too, so that callers written against the plain ``ValueError`` still catch it.
    """
