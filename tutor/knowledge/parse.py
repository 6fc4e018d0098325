"""Markup to blocks: headings and prose paragraphs, with code, math, tables, images and link lists left out.

Each parser reads one document's text and returns a flat list of :class:`Block`. Prose comes out cleaned
(see :mod:`tutor.knowledge.inline`); whatever is not prose leaves a ``break`` block behind, so a paragraph that
ends in a colon is never glued to a list on the far side of a dropped code block.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from tutor.knowledge.inline import md_inline, rst_inline, squash


@dataclass(frozen=True)
class Block:
    """One unit of a document: ``heading`` (with its level), ``rubric``, ``para``, ``item`` (its indent), ``break``."""

    kind: str
    text: str = ""
    level: int = 0


BREAK = Block("break")

# -- reStructuredText ------------------------------------------------------------------------------------------

_ADORNMENT = set("=-`:'\"~^_*+#<>.")
_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:.+-]+)::(?:\s+(.*))?$")
_EXPLICIT = re.compile(r"^(\s*)\.\.(?:\s|$)")
_ITEM = re.compile(r"^(\s*)(?:[-*+•‣⁃]|\(?(?:\d+|[A-Za-z]|#)[.)])\s+(\S.*)$")
_SIMPLE_TABLE = re.compile(r"^=+( +=+)+$")
_RST_LINKS_ONLY = re.compile(r"^(?:`[^`]*<[^>`]*>`__?[\s,;.]*)+$")
# Admonitions hold prose worth keeping; every other directive (code, math, image, figure, toctree...) is dropped.
_ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso"}
_ADMONITIONS |= {"admonition", "topic", "sidebar", "epigraph", "highlights", "pull-quote", "versionadded"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_adornment(line: str) -> bool:
    s = line.rstrip()
    return len(s) >= 3 and s[0] in _ADORNMENT and s == s[0] * len(s)


class _RstParser:
    def __init__(self, source: str, styles: list[tuple[str, bool]] | None = None) -> None:
        self.lines = source.expandtabs(8).splitlines()
        self.styles = [] if styles is None else styles  # section adornments, in order of first use = level
        self.blocks: list[Block] = []

    def _skip_indented(self, j: int, base: int) -> int:
        """The index after the lines (blank ones included) indented deeper than ``base``."""
        lines = self.lines
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            j += 1
        return j

    def _heading(self, style: tuple[str, bool], title: str) -> None:
        if style not in self.styles:
            self.styles.append(style)
        self.blocks.append(Block("heading", rst_inline(title), self.styles.index(style) + 1))

    def parse(self) -> list[Block]:
        lines, i = self.lines, 0
        while i < len(lines):
            line, s = lines[i], lines[i].strip()
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if not s:
                i += 1
            elif _indent(line) == 0 and _is_adornment(line) and nxt.strip() and i + 2 < len(lines):
                if _is_adornment(lines[i + 2]) and lines[i + 2].strip()[0] == s[0]:
                    self._heading((s[0], True), nxt.strip())
                    i += 3
                else:
                    i += 1  # a transition line
            elif _indent(line) == 0 and _is_adornment(nxt) and not _EXPLICIT.match(line) and not _is_adornment(line):
                self._heading((nxt.strip()[0], False), s)
                i += 2
            elif _is_adornment(line) and _indent(line) == 0:
                i += 1
            elif match := _DIRECTIVE.match(line):
                i = self._directive(i, match)
            elif _EXPLICIT.match(line):  # comment, target, footnote or citation: not prose
                i = self._skip_indented(i + 1, _indent(line))
            elif s.startswith(("+-", "+=")) or _SIMPLE_TABLE.match(s):
                while i < len(lines) and lines[i].strip():
                    i += 1
                self.blocks.append(BREAK)
            elif s == "::":
                i = self._skip_indented(i + 1, _indent(line))
                self.blocks.append(BREAK)
            elif match := _ITEM.match(line):
                i = self._item(i, match)
            elif nxt.strip() and _indent(nxt) > _indent(line) and not _ITEM.match(nxt) and not _EXPLICIT.match(nxt):
                i = self._definition(i)
            else:
                i = self._paragraph(i)
        return self.blocks

    def _directive(self, i: int, match: re.Match[str]) -> int:
        base, name, arg = _indent(self.lines[i]), match.group(2).lower(), (match.group(3) or "").strip()
        end = self._skip_indented(i + 1, base)
        if name == "rubric":
            self.blocks.append(Block("rubric", rst_inline(arg)))
        elif name in _ADMONITIONS:
            body = textwrap.dedent("\n".join(self.lines[i + 1 : end]))
            body = re.sub(r"^:[\w-]+:.*\n?", "", body.lstrip("\n"), flags=re.MULTILINE)  # directive options
            if name not in ("admonition", "topic", "sidebar"):
                body = arg + "\n" + body
            inner = _RstParser(body, self.styles).parse()
            self.blocks.extend(b for b in inner if b.kind != "heading")
            self.blocks.append(BREAK)
        else:
            self.blocks.append(BREAK)
        return end

    def _continuation(self, j: int, base: int) -> tuple[list[str], int]:
        """Lines that continue a paragraph or item: non-blank, deeper than ``base``, not a new block."""
        out, lines = [], self.lines
        while j < len(lines) and lines[j].strip() and _indent(lines[j]) > base:
            if _ITEM.match(lines[j]) or _EXPLICIT.match(lines[j]):
                break
            out.append(lines[j].strip())
            j += 1
        return out, j

    def _literal(self, text: str, j: int, base: int) -> tuple[str, int]:
        """A paragraph ending in ``::`` introduces a literal block: drop the block, keep the words."""
        if not text.endswith("::"):
            return text, j
        while j < len(self.lines) and not self.lines[j].strip():
            j += 1
        if j < len(self.lines) and _indent(self.lines[j]) > base:
            j = self._skip_indented(j, base)
        text = text[:-2].rstrip() if text[:-2].endswith((" ", "\t")) else text[:-1]
        return text, j

    def _item(self, i: int, match: re.Match[str]) -> int:
        base = _indent(self.lines[i])
        more, j = self._continuation(i + 1, base)
        raw = " ".join([match.group(2), *more])
        raw, j = self._literal(raw, j, base)
        if not _RST_LINKS_ONLY.match(raw):
            self.blocks.append(Block("item", rst_inline(raw), base))
        return j

    def _definition(self, i: int) -> int:
        term, base = self.lines[i].strip(), _indent(self.lines[i])
        body, j = self._continuation(i + 1, base)
        text, j = self._literal(" ".join(body), j, base)
        self.blocks.append(Block("para", f"{rst_inline(term)}: {rst_inline(text)}"))
        return j

    def _paragraph(self, i: int) -> int:
        lines, base = self.lines, _indent(self.lines[i])
        parts, j = [lines[i].strip()], i + 1
        while j < len(lines) and lines[j].strip() and not _EXPLICIT.match(lines[j]):
            if _indent(lines[j]) <= base and _ITEM.match(lines[j]):
                break
            parts.append(lines[j].strip())
            j += 1
        raw, j = self._literal(" ".join(parts), j, base)
        if raw.strip() and not _RST_LINKS_ONLY.match(raw):
            self.blocks.append(Block("para", rst_inline(raw)))
        return j


def parse_rst(source: str) -> list[Block]:
    """Blocks of a reStructuredText document (section levels in order of first use, as docutils assigns them)."""
    return _RstParser(source).parse()


# -- Markdown ----------------------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+(\S.*)$")
_HR = re.compile(r"^ {0,3}([-*_])(?:\s*\1){2,}\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S")
_MD_LINKS_ONLY = re.compile(r"^(?:!?\[[^\]]*\]\([^)]*\)[\s,;.]*)+$")


def _md_block_start(line: str, nxt: str) -> bool:
    """Whether ``line`` opens a new block (so it cannot continue a paragraph)."""
    s = line.strip()
    return bool(
        _ATX.match(line) or _FENCE.match(line) or _MD_ITEM.match(line) or _HR.match(line) or s.startswith("$$")
        or s.startswith(("<", ">", "|")) or (_TABLE_RULE.match(nxt) and "|" in s)
    )  # fmt: skip


def parse_md(source: str) -> list[Block]:
    """Blocks of a Markdown document (CommonMark's block structure, simplified)."""
    lines = source.expandtabs(4).splitlines()
    blocks: list[Block] = []
    i = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((j for j in range(1, len(lines)) if lines[j].strip() in ("---", "...")), None)
        i = end + 1 if end else 0
    while i < len(lines):
        line, s = lines[i], lines[i].strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not s or _LINK_DEF.match(line):
            i += 1
        elif match := _FENCE.match(line):
            fence = match.group(1)
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                i += 1
            i += 1
            blocks.append(BREAK)
        elif s.startswith("$$") or s.startswith("\\["):
            close = "$$" if s.startswith("$$") else "\\]"
            rest = s[2:]
            while close not in rest and i + 1 < len(lines):
                i += 1
                rest = lines[i]
            i += 1
            blocks.append(BREAK)
        elif match := _ATX.match(line):
            blocks.append(Block("heading", md_inline(match.group(2)), len(match.group(1))))
            i += 1
        elif re.match(r"^ {0,3}(=+|-+)\s*$", nxt) and not _md_block_start(line, nxt) and _indent(line) < 4:
            blocks.append(Block("heading", md_inline(s), 1 if nxt.strip()[0] == "=" else 2))
            i += 2
        elif _HR.match(line):
            i += 1
        elif s.startswith("<!--"):  # a comment ends on the line that closes it
            while i < len(lines) and "-->" not in lines[i]:
                i += 1
            i += 1
        elif s.startswith(("<", "|")) or (_TABLE_RULE.match(nxt) and "|" in s):
            while i < len(lines) and lines[i].strip():  # an HTML block or a table: not prose
                i += 1
            blocks.append(BREAK)
        elif _indent(line) >= 4 and (not blocks or blocks[-1].kind != "item"):
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) >= 4):  # indented code
                i += 1
            blocks.append(BREAK)
        else:
            i = _md_paragraph(lines, i, blocks)
    return blocks


def _md_paragraph(lines: list[str], i: int, blocks: list[Block]) -> int:
    """A paragraph, a list item or a block quote line run, starting at ``i``; returns the next index."""
    item = _MD_ITEM.match(lines[i])
    parts = [item.group(2) if item else lines[i].strip()]
    j = i + 1
    while j < len(lines) and lines[j].strip():
        nxt = lines[j + 1] if j + 1 < len(lines) else ""
        if _md_block_start(lines[j], nxt) and not lines[j].lstrip().startswith(">"):
            break
        if re.match(r"^ {0,3}(=+|-+)\s*$", nxt) and not item:
            break
        parts.append(lines[j].strip())
        j += 1
    raw = " ".join(re.sub(r"^(>\s?)+", "", p) for p in parts)
    raw = re.sub(r"\s{2,}$|\\$", "", raw)
    if raw.strip() and not _MD_LINKS_ONLY.match(raw.strip()):
        blocks.append(Block("item", md_inline(raw), _indent(lines[i])) if item else Block("para", md_inline(raw)))
    return j


# -- plain text ----------------------------------------------------------------------------------------------------


def parse_txt(source: str) -> list[Block]:
    """Blocks of plain text: paragraphs separated by blank lines; lines starting with a list marker are items."""
    blocks: list[Block] = []
    current: list[str] = []
    indent = 0
    kind = "para"

    def flush() -> None:
        if current:
            blocks.append(Block(kind, squash(" ".join(current)), indent))
            current.clear()

    for line in source.expandtabs(4).splitlines():
        if not line.strip():
            flush()
            kind = "para"
            continue
        if item := _MD_ITEM.match(line):
            flush()
            kind, indent = "item", _indent(line)
            current.append(item.group(2))
        else:
            current.append(line.strip())
    flush()
    return blocks
