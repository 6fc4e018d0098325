"""The tutor package's subcommands: ``ta ask``, ``ta chat``, ``ta generate``, ``ta models``, ``ta optimize``.

Registered through the ``tutor`` entry point (see :mod:`tutor.cli`); ``ta serve`` is the web app's own
(``app_serve.register``).
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
    p = sub.add_parser("ask", help="ask the teaching assistant one question (answered from the course, with sources)")
    p.add_argument("question", nargs="+")
    _add_tutor_args(p)
    cli.add_model_args(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="chat with the teaching assistant in the terminal")
    _add_tutor_args(p)
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

    from tutor import optimize

    optimize.register(sub)


def _add_tutor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kb", metavar="NAME", help="the knowledge base to answer from (default: the starter course)")
    p.add_argument(
        "--mode",
        choices=("extractive", "generative"),
        default="extractive",
        help="extractive: the answer is sentences of the course, chosen by the model (default); generative: the "
        "model's own words, with the passages it read listed as sources",
    )
    p.add_argument(
        "--ungrounded", action="store_true", help="answer from the model alone, without course text (no sources)"
    )
    p.add_argument(
        "--program",
        type=Path,
        metavar="FILE",
        help="a tutor program written by `ta optimize tutor` (the DSPy tutor: implies --ungrounded)",
    )


def make_tutor(args: argparse.Namespace) -> Any:
    """The tutor the arguments ask for; the knowledge base is checked before the model loads."""
    if args.ungrounded or args.program:
        if args.kb:
            raise CLIError(
                "--kb grounds the answers in a knowledge base: leave out --ungrounded (or --program), or --kb"
            )
        from tutor.explain import Tutor

        if args.program:
            from tutor.optimize import load_program, read_program_file

            read_program_file(args.program, "tutor")  # a bad file fails before the model loads
            model = cli.load_from_args(args)
            return load_program(args.program, model, "tutor", Tutor(model))
        return Tutor(cli.load_from_args(args))
    from tutor.grounded import GroundedTutor
    from tutor.knowledge import COURSE, open_kb

    kb = open_kb(args.kb or COURSE)
    return GroundedTutor(cli.load_from_args(args), kb, mode=args.mode)


def cmd_ask(args: argparse.Namespace) -> int:
    """Stream one answer to stdout, then its sources."""
    question = " ".join(args.question)
    if not question.strip():
        raise CLIError("the question is empty: ta ask 'What is overfitting?'")
    tutor = make_tutor(args)
    for piece in tutor.stream(question):
        print(piece, end="", flush=True)
    print()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal chat; history is kept for follow-up questions. Empty line or Ctrl-D ends it."""
    tutor = make_tutor(args)
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
