"""The ``ta`` command. This file only composes: each package registers its own subcommands.

A package joins by having a ``cli`` module with ``register(subparsers)``; each subcommand sets
``func(args) -> int`` with ``set_defaults``. Errors a user can fix (:class:`CLIError`,
:class:`~tutor.models.base.ModelError`, ``ValueError``) print one line naming the fix, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

PACKAGES = ("tutor.commands", "quizgen.cli", "benchmarks.cli", "finetune.cli")


class CLIError(Exception):
    """A mistake in the command line or its inputs; the message says what to do."""


def build_parser() -> argparse.ArgumentParser:
    """The whole ``ta`` parser, with every installed package's subcommands."""
    parser = argparse.ArgumentParser(prog="ta", description="AI teaching assistant and quiz engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in PACKAGES:
        if importlib.util.find_spec(name.split(".")[0]) is None or importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ta``; returns the exit code."""
    from tutor.models.base import ModelError
    from tutor.models.constraints import OutputTypeError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (CLIError, ModelError, OutputTypeError, ValueError) as exc:
        print(f"ta {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
