"""The knowledge bases a student picks from, the tutor for each, and notes added to one (what the page offers).

    >>> tutors = Tutors(Tutor(model), lambda name: GroundedTutor(model, open_kb(name)))
    >>> tutors.choices()                            # ['course', 'mynotes', 'none (model only)']
    >>> tutors("course").stream("What is dropout?")  # answers from the course, then its sources
    >>> add_notes("mynotes", ["week1.pdf"])          # ('mynotes', AddReport(added=['week1.pdf'], ...))

A choice is a name from the list, never a path: :func:`pick` refuses anything else. :data:`NO_KB` is the
model alone, without a knowledge base: its answers and questions are not grounded and say so.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tutor.knowledge import COURSE, SUPPORTED, AddReport, KnowledgeBase, KnowledgeError, open_kb

NO_KB = "none (model only)"  # the choice of no knowledge base: the model alone, marked ungrounded


def kb_names() -> list[str]:
    """Every knowledge base's name: the shipped course first, then the student's own, sorted."""
    return sorted(KnowledgeBase.names(), key=lambda name: name != COURSE)  # a stable sort keeps the rest in order


def choices() -> list[str]:
    """What a student picks from: every knowledge base, then the model alone."""
    return [*kb_names(), NO_KB]


def pick(choice: str, offered: Sequence[str]) -> str:
    """``choice`` when it is one of ``offered``; else a KnowledgeError that lists them."""
    if choice not in offered:
        raise KnowledgeError(f"no knowledge base named {choice!r} here: choose one of {', '.join(offered)}")
    return choice


class Tutors:
    """The tutor for each choice: ``tutors("course").stream(question, history)``.

    :data:`NO_KB` gets the model-only ``tutor``; a knowledge base's name gets ``grounded(name)``, a tutor that
    answers from it and cites it, built the first time the name is picked and then kept (it reads the knowledge
    base at every question, so notes added later are found). Safe to call from many threads at once.
    """

    def __init__(self, tutor: Any, grounded: Callable[[str], Any] | None = None) -> None:
        """``grounded``: a knowledge base's name -> its tutor; None: the model-only tutor is the only choice."""
        self.tutor = tutor
        self.grounded = grounded
        self.default = COURSE if grounded else NO_KB
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def choices(self) -> list[str]:
        """The names a student can pick, the model alone last."""
        return choices() if self.grounded else [NO_KB]

    def __call__(self, choice: str) -> Any:
        """The tutor for ``choice``; a KnowledgeError when it is not one of :meth:`choices`."""
        if pick(choice, self.choices()) == NO_KB:
            return self.tutor
        assert self.grounded is not None, "choices() offers a knowledge base only with a factory"
        with self._lock:  # two first questions at once build one tutor
            if choice not in self._made:
                self._made[choice] = self.grounded(choice)
            return self._made[choice]


def add_notes(name: str, paths: Sequence[str]) -> tuple[KnowledgeBase, AddReport]:
    """Index files into knowledge base ``name``, created when new: the ingestion of ``ta kb add``.

    Every file is read and checked before anything is written, so a bad file (the KnowledgeError names it)
    leaves the knowledge base as it was, and one created for it is not left behind empty.
    """
    if not paths:
        raise KnowledgeError(f"choose one or more files to add first ({', '.join(SUPPORTED)})")
    kb = KnowledgeBase(name)  # checks the name
    new = kb.name != COURSE and not kb.exists()  # the course refuses notes itself, before reading a file
    if new:
        open_kb(kb.name, create=True)
    try:
        return kb, kb.add(paths)
    except BaseException:
        if new and not kb.documents():  # not when someone else has added to it meanwhile
            with contextlib.suppress(KnowledgeError):
                kb.remove()
        raise


def added_text(kb: KnowledgeBase, report: AddReport) -> str:
    """What :func:`add_notes` did, in words: "mynotes: added a.md; unchanged b.md (2 documents, 14 passages)"."""
    said = [("added", report.added), ("updated", report.updated), ("unchanged", report.skipped)]
    done = "; ".join(f"{label} {', '.join(docs)}" for label, docs in said if docs)
    stats = kb.stats()
    return f"{kb.name}: {done} ({_count(stats['documents'], 'document')}, {_count(stats['passages'], 'passage')})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
