"""``ta users`` (accounts) and ``ta review`` (the cards due, in the terminal), on the progress store.

    ta users add ada                 # asks for a password (or reads one line of stdin when it is not a terminal)
    ta users add tess --teacher      # a teacher sees the class
    ta users list
    ta users passwd ada
    ta review --user ada             # the cards due now, with the quiz's feedback; each answer reschedules its card

The store is ``TA_DATABASE_URL``'s PostgreSQL, else ``progress.db`` in the data directory (``TA_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

from tutor.cli import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``users`` and ``review`` to ``ta``."""
    users = sub.add_parser("users", help="accounts for the web app: students and teachers")
    users.set_defaults(func=lambda args: users.print_help(sys.stderr) or 2)
    actions = users.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="create an account (the password is asked for, or read from stdin)")
    add.add_argument("name", help="1-40 lower-case letters, digits, '_', '.' or '-'")
    add.add_argument("--teacher", action="store_true", help="a teacher: sees every student's progress")
    add.set_defaults(func=cmd_add)
    passwd = actions.add_parser("passwd", help="set a new password for an account")
    passwd.add_argument("name")
    passwd.set_defaults(func=cmd_passwd)
    listing = actions.add_parser("list", help="the accounts, teachers marked")
    listing.set_defaults(func=cmd_list)

    review = sub.add_parser("review", help="answer your spaced-repetition cards that are due")
    review.add_argument("--user", required=True, help="your account (its password is asked for)")
    review.add_argument("--limit", type=int, default=20, metavar="N", help="at most N cards this time (default 20)")
    review.set_defaults(func=cmd_review)


def read_password(prompt: str = "Password: ", confirm: bool = False) -> str:
    """A password from the terminal (not echoed), or one line of standard input when it is not a terminal."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise CLIError("no password on standard input: pipe one line, or run this in a terminal")
        return line.rstrip("\r\n")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != password:
        raise CLIError("the two passwords differ: nothing was changed")
    return password


def cmd_add(args: argparse.Namespace) -> int:
    """``ta users add NAME [--teacher]``."""
    from tutor.progress.accounts import check_name, check_password, hash_password
    from tutor.progress.store import open_store

    name = check_name(args.name)
    store = open_store()
    if store.user(name) is not None:
        raise CLIError(f"there is already a user named {name!r}: `ta users passwd {name}` changes the password")
    password = check_password(read_password(f"Password for {name}: ", confirm=True))
    store.add_user(name, hash_password(password), args.teacher, datetime.now(UTC))
    print(f"added {'teacher' if args.teacher else 'student'} {name} to {store.location}", file=sys.stderr)
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    """``ta users passwd NAME``."""
    from tutor.progress.accounts import check_password, hash_password
    from tutor.progress.store import open_store

    store = open_store()
    if store.user(args.name) is None:
        raise CLIError(f"no user named {args.name!r}: `ta users add {args.name}` creates one")
    store.set_password(args.name, hash_password(check_password(read_password(f"New password for {args.name}: ", True))))
    print(f"changed the password of {args.name}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``ta users list``: one name a line, teachers marked."""
    from tutor.progress.store import open_store

    for user in open_store().users():
        print(f"{user.name}\tteacher" if user.teacher else user.name)
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """``ta review --user NAME``: each due card, the quiz's feedback, the card rescheduled."""
    from quizgen.cli import ask_letter
    from quizgen.grade import feedback_text
    from quizgen.schema import LETTERS
    from tutor.progress.accounts import Login
    from tutor.progress.store import open_store
    from tutor.progress.tracker import Progress, card_session

    store = open_store()
    if not Login(store).verify(args.user, read_password(f"Password for {args.user}: ")):
        raise CLIError("wrong user name or password")
    progress = Progress(store)
    due = progress.due(args.user)
    if not due:
        print("Nothing to review now: cards come back when they are due.")
        return 0
    print(f"{len(due)} cards due: answer with A, B, C or D (q quits).\n")
    right = done = 0
    for card in due[: max(1, args.limit)]:
        question = card_session(card).quiz.questions[0].question
        print(f"[{card.topic}] {question.stem}")
        print("\n".join(f"   {letter}. {text}" for letter, text in zip(LETTERS, question.options, strict=True)))
        letter = ask_letter(LETTERS)
        if letter is None:
            break
        _, answered = progress.review(args.user, card.question_key, letter)
        print(feedback_text(answered.feedback, question))
        if not answered.saved:
            print(f"WARNING: this answer was NOT saved: {answered.problem}", file=sys.stderr)
        done, right = done + 1, right + answered.feedback.correct
    print(f"Reviewed {done}: {right} right. {len(progress.due(args.user))} still due.")
    return 0
