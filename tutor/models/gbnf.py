"""Choices, literals and regular expressions as llama.cpp GBNF grammars (for servers that take only GBNF).

llama.cpp's servers (``llama-server`` and llama-cpp-python's) accept a ``grammar`` field in GBNF but no
regex and no choice list. A regex is translated from Python's own parse tree (``re._parser``), so what
the server enforces is exactly what :meth:`Pattern.check` accepts afterwards; a feature GBNF cannot
express (look-arounds, back-references, word boundaries) is refused with :class:`GrammarError` rather
than approximated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tutor.errors import TutorError

try:  # Python 3.11+ keeps the regex parser here; sre_parse is its deprecated alias
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]


class GrammarError(TutorError, ValueError):
    """A constraint GBNF cannot express; the message names the feature."""


def literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def choices(options: Sequence[str]) -> str:
    """A grammar whose only outputs are ``options``."""
    return "root ::= " + " | ".join(literal(o) for o in options)


def exactly(text: str) -> str:
    """A grammar whose only output is ``text`` (forcing a continuation to score it)."""
    return "root ::= " + literal(text)


def regex(pattern: str) -> str:
    """A grammar whose outputs are the strings ``re.fullmatch(pattern, s, re.DOTALL)`` accepts.

    Raises:
        GrammarError: for a regex feature GBNF has no form for.
    """
    try:
        tree = _p.parse(pattern, re.DOTALL)
    except re.error as exc:
        raise GrammarError(f"invalid regex {pattern!r}: {exc}") from exc
    return "root ::= " + (_sequence(list(tree), pattern, top=True) or '""')


def _sequence(items: list[tuple[Any, Any]], pattern: str, top: bool = False) -> str:
    parts: list[str] = []
    run: list[str] = []  # consecutive literal characters become one GBNF string
    for i, (op, arg) in enumerate(items):
        if op is _c.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            parts.append(literal("".join(run)))
            run = []
        if op is _c.AT:
            # Anchors at the ends of the whole pattern are what fullmatch means anyway.
            at_edge = top and (
                (i == 0 and arg in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING))
                or (i == len(items) - 1 and arg in (_c.AT_END, _c.AT_END_STRING))
            )
            if not at_edge:
                raise GrammarError(f"regex {pattern!r}: the anchor {arg} has no GBNF form")
            continue
        parts.append(_node(op, arg, pattern))
    if run:
        parts.append(literal("".join(run)))
    return " ".join(p for p in parts if p)


def _node(op: Any, arg: Any, pattern: str) -> str:
    if op is _c.LITERAL:
        return literal(chr(arg))
    if op is _c.NOT_LITERAL:
        return "[^" + _class_char(chr(arg)) + "]"
    if op is _c.ANY:
        return "[^\\x00]"  # DOTALL: any character (NUL never appears in model text)
    if op is _c.IN:
        return _char_class(arg, pattern)
    if op is _c.CATEGORY:
        return _char_class([(op, arg)], pattern)
    if op is _c.BRANCH:
        return "(" + " | ".join(_sequence(list(branch), pattern) or '""' for branch in arg[1]) + ")"
    if op is _c.SUBPATTERN:
        return "(" + (_sequence(list(arg[-1]), pattern) or '""') + ")"
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, high, body = arg
        inner = _sequence(list(body), pattern) or '""'
        atom = len(body) == 1 and body[0][0] in (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN, _c.CATEGORY)
        return (inner if atom else "(" + inner + ")") + _repeat(low, high)
    raise GrammarError(f"regex {pattern!r}: {op} has no GBNF form (use plain alternation, classes and repeats)")


def _repeat(low: int, high: int) -> str:
    unbounded = high == _c.MAXREPEAT
    if (low, unbounded) == (0, True):
        return "*"
    if (low, unbounded) == (1, True):
        return "+"
    if (low, high) == (0, 1):
        return "?"
    if unbounded:
        return f"{{{low},}}"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


_CATEGORIES = {
    _c.CATEGORY_DIGIT: ("0-9", False),
    _c.CATEGORY_NOT_DIGIT: ("0-9", True),
    _c.CATEGORY_SPACE: (" \\t\\n\\r\\x0B\\x0C", False),
    _c.CATEGORY_NOT_SPACE: (" \\t\\n\\r\\x0B\\x0C", True),
    _c.CATEGORY_WORD: ("a-zA-Z0-9_", False),
    _c.CATEGORY_NOT_WORD: ("a-zA-Z0-9_", True),
}


def _char_class(items: list[tuple[Any, Any]], pattern: str) -> str:
    negate, body = False, []
    for op, arg in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            body.append(_class_char(chr(arg)))
        elif op is _c.RANGE:
            body.append(_class_char(chr(arg[0])) + "-" + _class_char(chr(arg[1])))
        elif op is _c.CATEGORY and arg in _CATEGORIES:
            chars, negated = _CATEGORIES[arg]
            if negated:
                if len(items) > 1:
                    raise GrammarError(f"regex {pattern!r}: a negated class escape inside [...] has no GBNF form")
                return "[^" + chars + "]"
            body.append(chars)
        else:
            raise GrammarError(f"regex {pattern!r}: {op} {arg} inside [...] has no GBNF form")
    return "[" + ("^" if negate else "") + "".join(body) + "]"


def _class_char(ch: str) -> str:
    if ch in "]\\-^[":
        return "\\" + ch
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\x{ord(ch):02X}"
    return ch


MAX_RANGE = 1000  # integer ranges up to this wide are spelt out value by value


def number(minimum: float | None, maximum: float | None, integer: bool) -> str | None:
    """A GBNF expression for a JSON number (or integer) within [minimum, maximum], or None if none is exact.

    Whole-number bounds up to :data:`MAX_RANGE` apart are spelt out (``0.75`` in [0, 1]: an integral part
    below the maximum takes any fraction, the maximum only zeros); a lone minimum of 0 or 1 drops the sign
    (and the zero). Other bounds are left to the check after generation.
    """
    fraction = "" if integer else ' ("." [0-9]{1,15})?'
    whole = [b for b in (minimum, maximum) if b is not None]
    if any(isinstance(b, bool) or not float(b).is_integer() for b in whole):
        return None
    if minimum is not None and maximum is not None and 0 <= maximum - minimum <= MAX_RANGE:
        low, high = int(minimum), int(maximum)
        if integer:
            return "(" + " | ".join(f'"{i}"' for i in range(low, high + 1)) + ")"
        top = f'"{high}" ("." "0"{{1,15}})?'
        if low == high:
            return f"({top})"
        below = "(" + " | ".join(f'"{i}"' for i in range(low, high)) + ")"
        return f"({below}{fraction} | {top})"
    if maximum is None and minimum in (0, 1):
        first = "[1-9] [0-9]{0,15}" if minimum == 1 and integer else '("0" | [1-9] [0-9]{0,15})'
        return f"({first}{fraction})"
    return None
