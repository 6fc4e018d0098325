"""The tutor package's subcommands: ``ta ask``, ``ta chat``, ``ta generate``, ``ta models``.

Registered through the ``tutor`` entry point (see :mod:`tutor.cli`); ``ta serve`` is the web app's own
(``app.register``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tutor import cli
from tutor.cli import CLIError

# ---- backwards compatibility: remove once quizgen/cli.py, benchmarks/cli.py and app.py import tutor.cli ----
# Their parsers add the three old model flags (quizgen adds its own --threads beside them), so these
# keep the old flags and read --threads only where a parser has it.


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--adapter``, no ``--threads``; new code uses :func:`tutor.cli.add_model_args`."""
    parser.add_argument("--model", default="default", metavar="SPEC", help="default | FILE.gguf | DIR | hf:org/name")
    parser.add_argument("--backend", choices=("llamacpp", "transformers"), help="force a backend")
    parser.add_argument("--adapter", metavar="DIR", help="a PEFT adapter directory to apply")


def load_from_args(args: argparse.Namespace) -> Any:
    """:func:`tutor.cli.load_from_args` for a parser made by the old :func:`add_model_args`."""
    return cli.load_from_args(argparse.Namespace(**{"threads": None, **vars(args)}))


# ---- end of backwards compatibility ---------------------------------------------------------------


def register(sub: Any) -> None:
    """Add the tutor subcommands to ``ta``."""
    p = sub.add_parser("ask", help="ask the teaching assistant one question (streamed)")
    p.add_argument("question", nargs="+")
    cli.add_model_args(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="chat with the teaching assistant in the terminal")
    cli.add_model_args(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("generate", help="print one JSON document valid against a schema file")
    p.add_argument("prompt", nargs="+")
    p.add_argument("--schema", required=True, type=Path, metavar="FILE", help="a JSON schema file")
    p.add_argument("--max-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int)
    cli.add_model_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("models", help="show what 'default' resolves to and which backends are installed")
    p.set_defaults(func=cmd_models)


def cmd_ask(args: argparse.Namespace) -> int:
    """Stream one answer to stdout."""
    from tutor.explain import Tutor

    question = " ".join(args.question)
    if not question.strip():
        raise CLIError("the question is empty: ta ask 'What is overfitting?'")
    tutor = Tutor(cli.load_from_args(args))
    for piece in tutor.stream(question):
        print(piece, end="", flush=True)
    print()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal chat; history is kept for follow-up questions. Empty line or Ctrl-D ends it."""
    from tutor.explain import Tutor

    tutor = Tutor(cli.load_from_args(args))
    history: list[tuple[str, str]] = []
    print("Ask about any machine-learning concept. An empty line or Ctrl-D ends the chat.", file=sys.stderr)
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            break
        print("ta> ", end="", flush=True)
        answer = "".join(_echo(tutor.stream(question, history)))
        print()
        history.append((question, answer))
    return 0


def _echo(pieces: Any) -> Any:
    for piece in pieces:
        print(piece, end="", flush=True)
        yield piece


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate one JSON document under ``--schema`` and print it."""
    from tutor.models.constraints import load_schema_file

    schema = load_schema_file(args.schema)  # checked before the model loads: a bad file fails fast
    model = cli.load_from_args(args)
    text = model.generate(
        " ".join(args.prompt), schema, max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed
    )
    print(json.dumps(json.loads(text), ensure_ascii=False))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Print the registry's description as JSON."""
    from tutor.models.registry import describe

    print(json.dumps(describe(), indent=2))
    return 0
