"""The knowledge base's one error type: a problem the user can fix, named with the file or knowledge base."""

from __future__ import annotations

try:  # the project-wide base class that `ta` prints as one line
    from tutor.errors import TutorError as _Base
except ImportError:  # pragma: no cover - only before tutor/errors.py lands
    _Base = Exception

# A ValueError too, so that callers written against the plain ValueError still catch it (as tutor.errors.InputError).
_BASES: tuple[type[Exception], ...] = (ValueError,) if _Base is Exception else (_Base, ValueError)


class KnowledgeError(*_BASES):  # type: ignore[misc]
    """A file or knowledge base the user can fix: the message names it and says what to do."""
