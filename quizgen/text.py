r"""One rule for the characters a quiz string may carry out of the program: :func:`clean`.

A model's JSON grammar allows any escaped control character in a string (``\f``, ``\u0000``), and course text
extracted from a PDF holds form feeds. XML 1.0 forbids most C0 controls (one in a QTI item makes the whole
package fail to import), the Anki importer ends a note at a bare carriage return, and a terminal obeys an
escape sequence in ``ta quiz`` output. So every exporter passes its strings through :func:`clean`, and the schema
may apply the same function to a question's strings (it is idempotent: ``clean(clean(s)) == clean(s)``).

What it does, in order:

* every line break becomes ``\n``: CRLF, a bare CR, vertical tab, form feed, the information separators
  U+001C-U+001E, NEL (U+0085) and the Unicode line and paragraph separators (U+2028, U+2029), the set that
  :meth:`str.splitlines` treats as line boundaries;
* every other control character is dropped except tab: the rest of C0, DEL and C1 (U+0080-U+009F);
* what XML 1.0 cannot hold at all is dropped: lone surrogates and the non-characters U+FFFE and U+FFFF.

Everything else stays, emoji and right-to-left text included: they are valid in every format we write.
"""

from __future__ import annotations

import re

_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_DROPPED = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    r"""``text`` with line breaks as ``\n`` and no control character but tab and newline (see the module)."""
    return _DROPPED.sub("", _LINE_BREAKS.sub("\n", text))


def is_clean(text: str) -> bool:
    """Whether :func:`clean` leaves ``text`` as it is."""
    return _LINE_BREAKS.search(text) is None and _DROPPED.search(text) is None
