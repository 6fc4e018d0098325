"""The knowledge base's one error type: a problem the user can fix, named with the file or knowledge base."""

from __future__ import annotations

try:  # the project-wide base class, where it exists
    from tutor.errors import TutorError as _Base
except ImportError:
    _Base = Exception

_BASES: tuple[type[Exception], ...] = (_Base,) if issubclass(_Base, ValueError) else (ValueError, _Base)


class KnowledgeError(*_BASES):  # type: ignore[misc]
    """A file or knowledge base the user can fix: the message names it and says what to do."""
