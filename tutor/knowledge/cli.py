"""``ta kb``: add notes to a knowledge base, list, search and remove knowledge bases.

ta kb add mynotes notes/ chapter1.pdf     # create if needed; changed files re-indexed, unchanged skipped
ta kb list                                # every knowledge base with its counts
ta kb list mynotes                        # its documents
ta kb search course "what does dropout do"
ta kb remove mynotes
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add ``kb`` and its subcommands to ``ta``."""
    kb = sub.add_parser("kb", help="knowledge bases: add notes (md, rst, txt, pdf), list, search, remove")
    kb.set_defaults(func=lambda args: kb.print_help(sys.stderr) or 2)
    commands = kb.add_subparsers(dest="kb_command", metavar="ACTION")

    p = commands.add_parser("add", help="index files or folders into a knowledge base (created if needed)")
    p.add_argument("name", metavar="NAME", help="knowledge base name: letters, digits, - and _")
    p.add_argument("paths", metavar="PATH", nargs="+", type=Path, help="files or folders (recursed)")
    p.set_defaults(func=cmd_add)

    p = commands.add_parser("list", help="list knowledge bases, or one knowledge base's documents")
    p.add_argument("name", metavar="NAME", nargs="?")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("search", help="the passages that best match a question")
    p.add_argument("name", metavar="NAME")
    p.add_argument("query", nargs="+")
    p.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    p.set_defaults(func=cmd_search)

    p = commands.add_parser("remove", help="delete a knowledge base (your files are not touched)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
    """Create the knowledge base if needed and index the paths in one transaction."""
    from tutor.knowledge import open_kb

    kb = open_kb(args.name, create=False) if _exists(args.name) else None
    start = time.perf_counter()
    created = kb is None
    if created:
        from tutor.knowledge.ingest import collect

        collect(args.paths)  # refuse bad paths before creating an empty knowledge base
        kb = open_kb(args.name, create=True)
    try:
        report = kb.add(args.paths)
    except BaseException:
        if created:
            kb.remove()  # a failed first add leaves no empty knowledge base behind
        raise
    for label, names in (("added", report.added), ("updated", report.updated), ("unchanged", report.skipped)):
        for name in names:
            print(f"{label:9} {name}")
    stats = kb.stats()
    print(
        f"{kb.name}: {len(report.added)} added, {len(report.updated)} updated, {len(report.skipped)} unchanged; "
        f"{stats['documents']} documents, {stats['passages']} passages ({time.perf_counter() - start:.1f} s)"
    )
    return 0


def _exists(name: str) -> bool:
    from tutor.knowledge import COURSE, KnowledgeBase

    kb = KnowledgeBase(name)
    return kb.name == COURSE or kb.exists()


def cmd_list(args: argparse.Namespace) -> int:
    """Every knowledge base with its counts, or one knowledge base's documents."""
    from tutor.knowledge import KnowledgeBase, data_dir, open_kb

    if args.name:
        kb = open_kb(args.name)
        for doc in kb.documents():
            print(doc)
        return 0
    print(f"{'name':24} {'documents':>9} {'passages':>9}   ({data_dir() / 'knowledge.db'})")
    for name in KnowledgeBase.names():
        stats = open_kb(name).stats()
        print(f"{name:24} {stats['documents']:9} {stats['passages']:9}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Print the best passages with their place and scores."""
    from tutor.knowledge import open_kb

    kb = open_kb(args.name)
    query = " ".join(args.query)
    hits = kb.search(query, k=args.k)
    if not hits:
        print(f"nothing in {kb.name!r} matches {query!r}")
        return 1
    for i, hit in enumerate(hits, 1):
        p = hit.passage
        print(
            f"{i}. {p.cite()}  [{p.start}:{p.end}]  score {hit.score:.3f} (bm25 {hit.bm25:.2f}, cosine {hit.dense:.2f})"
        )
        print(textwrap.fill(p.text, width=100, initial_indent="   ", subsequent_indent="   "))
    missing = kb.missing_terms(query)
    if missing:
        print(f"(no passage mentions: {', '.join(missing)})")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete one knowledge base."""
    from tutor.knowledge import open_kb

    kb = open_kb(args.name)
    kb.remove()
    print(f"removed knowledge base {kb.name!r}")
    return 0
