"""The ``ta`` command: the plumbing every subcommand shares, and the composition of the subcommands.

Subcommands come from entry points, as in simonw/llm: each package lists a ``register(subparsers)``
function under ``[project.entry-points."ta.commands"]`` in pyproject.toml, and each subcommand it
adds sets ``func(args) -> int`` with ``set_defaults``. A package that fails to register is named on
stderr and the others still work.

The plumbing lives here, at the bottom, so that a package's CLI needs nothing from another's:
:class:`CLIError`, :func:`add_model_args` (the same model flags on every subcommand) and
:func:`load_from_args`. A :class:`~tutor.errors.TutorError` (a missing file, a bad flag, a model that
will not load) prints one line that says what to do; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, NoReturn

from tutor.errors import TutorError

if TYPE_CHECKING:
    from tutor.models.base import Model

GROUP = "ta.commands"  # the entry-point group each package registers its subcommands under


class CLIError(TutorError):
    """A mistake in the command line or its inputs; the message says what to do."""


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--adapter`` and ``--threads``: the same on every subcommand that loads a model."""
    parser.add_argument(
        "--model", default="default", metavar="SPEC", help="default | FILE.gguf | DIR | hf:org/name | openai:URL"
    )
    parser.add_argument("--backend", choices=("llamacpp", "transformers"), help="force a backend")
    parser.add_argument("--adapter", metavar="DIR", help="a PEFT adapter directory to apply")
    # llama.cpp spins its threads at a barrier every token: on a busy machine one thread is faster than all.
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for the model (default: every core)")
    server = parser.add_argument_group("a model on a server (--model openai:http://host:port/v1)")
    server.add_argument("--server-model", metavar="NAME", help="the served model's name (default: the only one)")
    server.add_argument(
        "--server-profile",
        choices=("vllm", "sglang", "llama-server", "llama-cpp-python", "openai"),
        help="which server it is (default: detected)",
    )
    server.add_argument("--in-flight", type=int, metavar="N", help="requests in flight at once (default: 4)")
    server.add_argument(
        "--allow-unconstrained",
        action="store_true",
        help="use a server that ignores constraints: validate and retry here, results marked unconstrained",
    )


def load_from_args(args: argparse.Namespace) -> Model:
    """Load the model the :func:`add_model_args` flags name (with the start-up self-check)."""
    from tutor.models.registry import load_model

    options = {}
    if args.threads is not None:
        if args.threads < 1:
            raise CLIError(f"--threads must be at least 1, got {args.threads}")
        options["n_threads"] = args.threads
    if str(args.model).startswith("openai:"):
        options.update(_server_options(args))
    return load_model(args.model, backend=args.backend, adapter=args.adapter, **options)


def _server_options(args: argparse.Namespace) -> dict[str, object]:
    """The server flags that were given (a namespace built elsewhere may lack them)."""
    options: dict[str, object] = {}
    for flag, key in (("server_model", "model"), ("server_profile", "profile"), ("in_flight", "max_in_flight")):
        if getattr(args, flag, None) is not None:
            options[key] = getattr(args, flag)
    if getattr(args, "in_flight", None) is not None and args.in_flight < 1:
        raise CLIError(f"--in-flight must be at least 1, got {args.in_flight}")
    if getattr(args, "allow_unconstrained", False):
        options["allow_unconstrained"] = True
    return options


def build_parser() -> argparse.ArgumentParser:
    """The whole ``ta`` parser, with the subcommands of every package that registers under :data:`GROUP`."""
    parser = argparse.ArgumentParser(prog="ta", description="AI teaching assistant and quiz engine.")
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    entries = entry_points(group=GROUP)
    if not entries:  # a checkout on sys.path that was never installed has no entry points
        print("ta: no subcommands are registered: install the project (`pip install -e .`)", file=sys.stderr)
    for entry in entries:
        try:
            entry.load()(sub)
        except Exception as exc:  # a broken package must not take every other command down with it
            print(
                f"ta: skipped the {entry.name!r} commands ({entry.value}): {type(exc).__name__}: {exc}", file=sys.stderr
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ta``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except TutorError as exc:
        print(f"ta {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def run() -> None:
    """The ``ta`` console script: :func:`main`, then exit with its code at once.

    The interpreter's teardown can wait on the model's worker and llama.cpp's threads (seen after Ctrl-C in
    ``ta chat`` and ``ta serve``), and a command that has finished, or a user who pressed Ctrl-C, expects the
    prompt back now. Nothing is lost by skipping it: every store this project writes commits per transaction,
    and the output streams are flushed here.
    """
    try:
        code = main()
    except KeyboardInterrupt:  # a second Ctrl-C while the first was handled (the model being freed): still 130
        code = 130
    exit_at_once(code)


def exit_at_once(code: int) -> NoReturn:
    """Flush the output streams and end the process with ``code``, skipping the interpreter's teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe must not turn an exit code into a traceback
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
