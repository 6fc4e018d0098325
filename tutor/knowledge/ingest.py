"""Files to documents: the checks every file passes (size, text or PDF, readable), and one reader per format.

:func:`collect` expands the paths a user gives (folders recurse over the supported extensions) and names each
document; :func:`read_document` turns one file into a :class:`~tutor.knowledge.passages.Document`. Every
problem a user can fix raises :class:`KnowledgeError` naming the file and what to do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from tutor.knowledge.errors import KnowledgeError
from tutor.knowledge.parse import BREAK, Block, parse_md, parse_rst, parse_txt
from tutor.knowledge.passages import Document, layout

MAX_FILE_MB = 20
MAX_FILE_BYTES = MAX_FILE_MB * 1024 * 1024  # a 500-page textbook PDF is ~5-15 MB; anything larger, split it
TEXT_FORMATS = {".md": parse_md, ".markdown": parse_md, ".rst": parse_rst, ".txt": parse_txt, ".text": parse_txt}
SUPPORTED = (*TEXT_FORMATS, ".pdf")
INGEST_VERSION = 1  # bump when extraction changes: stored documents are then re-read even if their bytes are not


def _supported_list() -> str:
    return ", ".join(s for s in SUPPORTED if s not in (".markdown", ".text"))


def collect(paths: Iterable[Path | str]) -> list[tuple[str, Path]]:
    """(document name, file) for every file the paths name; a folder contributes its supported files, recursively.

    A file is named as given (its file name); a file found in a folder is named by its path relative to that
    folder. Hidden files and folders are skipped.
    """
    found: dict[str, Path] = {}
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )  # fmt: skip
            if not files:
                raise KnowledgeError(
                    f"{path}: no {_supported_list()} files in this folder (searched its subfolders too)"
                )
            pairs = [(p.relative_to(path).as_posix(), p) for p in files]
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED:
                raise KnowledgeError(
                    f"{path}: unsupported file type {path.suffix or '(none)'}: use {_supported_list()}"
                )
            pairs = [(path.name, path)]
        else:
            raise KnowledgeError(f"{path}: no such file or folder")
        for name, file in pairs:
            if name in found and found[name].resolve() != file.resolve():
                raise KnowledgeError(
                    f"{file}: another file given is also named {name!r} ({found[name]}): add them to separate "
                    "knowledge bases or rename one"
                )
            found[name] = file
    return list(found.items())


def read_bytes(path: Path) -> bytes:
    """The file's bytes, after the size check."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise KnowledgeError(
                f"{path}: {size / 2**20:.1f} MB is over the {MAX_FILE_MB} MB limit for one file: split it into parts"
            )
        return path.read_bytes()
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read it ({exc.strerror or exc})") from exc


def decode_text(path: Path, data: bytes) -> str:
    """UTF-8 text (a BOM is allowed); a binary file or another encoding is refused with the fix."""
    if b"\x00" in data[:65536]:
        raise KnowledgeError(f"{path}: this is a binary file, not {path.suffix} text: give the text file instead")
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(
            f"{path}: not UTF-8 text (byte {exc.start}): convert it, e.g. `iconv -f latin1 -t utf-8`"
        ) from exc


def read_document(name: str, path: Path) -> Document:
    """One file as a document with passages; :class:`KnowledgeError` if it is unreadable or holds no text."""
    data = read_bytes(path)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        blocks, title = pdf_blocks(path, data)
        doc = layout(blocks, name, path.stem, title=title or path.stem)
    else:
        doc = layout(TEXT_FORMATS[suffix](decode_text(path, data)), name, path.stem)
    if not doc.chunks:
        raise KnowledgeError(
            f"{path}: no prose found to index (only code, math, tables or nothing): add sentences to it, or add the "
            "other files without it (nothing was added)"
        )
    doc.source = str(path.resolve())
    doc.sha256 = hashlib.sha256(data).hexdigest()
    return doc


# -- PDF -----------------------------------------------------------------------------------------------------------


def _pdf_reader(path: Path, data: bytes):  # -> pypdf.PdfReader
    try:
        import pypdf
        from pypdf.errors import PyPdfError
    except ImportError as exc:
        raise KnowledgeError(f"{path}: reading PDF needs pypdf: pip install pypdf") from exc
    import io
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns on every small defect it repairs
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise KnowledgeError(
                f"{path}: the PDF is encrypted (password-protected): save a decrypted copy, e.g. "
                "`qpdf --decrypt --password=PW in.pdf out.pdf`, and add that"
            )
        len(reader.pages)
    except KnowledgeError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise KnowledgeError(
            f"{path}: not a readable PDF ({type(exc).__name__}: {exc}): re-export or repair it"
        ) from exc
    except NotImplementedError as exc:  # pypdf's answer to encryption schemes it cannot open
        raise KnowledgeError(
            f"{path}: the PDF is encrypted in a way pypdf cannot open ({exc}): decrypt it first"
        ) from exc
    return reader


def _outline_starts(reader) -> dict[int, tuple[str, ...]]:
    """Page index -> the outline (bookmark) path that starts on it."""
    starts: dict[int, tuple[str, ...]] = {}

    def walk(items: list, path: tuple[str, ...]) -> None:
        last: tuple[str, ...] = path
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # a broken bookmark costs its heading, not the document
                continue
            last = (*path, str(item.title).strip())
            starts.setdefault(page, last)

    try:
        walk(reader.outline, ())
    except Exception:
        return {}
    return starts


def _page_paragraphs(text: str) -> list[str]:
    """Paragraphs of one page's extracted text: hyphenated line ends joined, breaks at blank or short lines."""
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    lines = [line.strip() for line in text.splitlines()]
    widths = sorted(len(line) for line in lines if line)
    typical = widths[len(widths) * 3 // 4] if widths else 0
    paragraphs, current = [], []
    for line in lines:
        if not line:
            if current:
                paragraphs.append(" ".join(current))
            current = []
            continue
        current.append(line)
        if re.search(r"[.?!:]['\")]?$", line) and len(line) < 0.7 * typical:  # a short line ends its paragraph
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def pdf_blocks(path: Path, data: bytes) -> tuple[list[Block], str | None]:
    """One section per page (under the PDF's outline heading when it has one), its paragraphs as prose; the title.

    The title is the PDF's own (metadata) title, if it has one.
    """
    reader = _pdf_reader(path, data)
    try:
        title = str(reader.metadata.title).strip() if reader.metadata and reader.metadata.title else None
    except Exception:  # damaged metadata costs the title only
        title = None
    starts = _outline_starts(reader)
    blocks: list[Block] = []
    outline: tuple[str, ...] = ()
    any_text = False
    for index, page in enumerate(reader.pages):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # pypdf raises many types on damaged content streams
            raise KnowledgeError(f"{path}: page {index + 1} cannot be read ({exc}): re-export the PDF") from exc
        outline = starts.get(index, outline)
        blocks.extend(Block("heading", title, depth + 1) for depth, title in enumerate(outline))
        blocks.append(Block("heading", f"page {index + 1}", len(outline) + 1))
        for paragraph in _page_paragraphs(text):
            any_text = any_text or bool(paragraph.strip())
            blocks.append(Block("para", re.sub(r"\s+", " ", paragraph).strip()))
        blocks.append(BREAK)
    if not any_text:
        raise KnowledgeError(f"{path}: the PDF has no text layer (scanned pages?): run OCR on it first, e.g. ocrmypdf")
    return blocks, title
