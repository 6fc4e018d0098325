"""The tutor package's subcommands: ``ta ask``, ``ta chat``, ``ta generate``, ``ta models``, ``ta serve``.

:func:`add_model_args` and :func:`load_from_args` are shared with the other packages' CLIs, so every
subcommand names its model the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tutor.cli import CLIError


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--adapter``: the same on every subcommand."""
    parser.add_argument("--model", default="default", metavar="SPEC", help="default | FILE.gguf | DIR | hf:org/name")
    parser.add_argument("--backend", choices=("llamacpp", "transformers"), help="force a backend")
    parser.add_argument("--adapter", metavar="DIR", help="a PEFT adapter directory to apply")


def load_from_args(args: argparse.Namespace) -> Any:
    """Load the model the arguments name (with the start-up self-check)."""
    from tutor.models.registry import load_model

    return load_model(args.model, backend=args.backend, adapter=args.adapter)


def register(sub: Any) -> None:
    """Add the tutor subcommands to ``ta``."""
    p = sub.add_parser("ask", help="ask the teaching assistant one question (streamed)")
    p.add_argument("question", nargs="+")
    add_model_args(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="chat with the teaching assistant in the terminal")
    add_model_args(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("generate", help="print one JSON document valid against a schema file")
    p.add_argument("prompt", nargs="+")
    p.add_argument("--schema", required=True, type=Path, metavar="FILE", help="a JSON schema file")
    p.add_argument("--max-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int)
    add_model_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("models", help="show what 'default' resolves to and which backends are installed")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("serve", help="run the web app (chat and quiz)")
    add_model_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--queue-max", type=int, metavar="N", help="requests that may wait at once (default: 16)")
    p.set_defaults(func=cmd_serve)


def cmd_ask(args: argparse.Namespace) -> int:
    """Stream one answer to stdout."""
    from tutor.explain import Tutor

    question = " ".join(args.question)
    if not question.strip():
        raise CLIError("the question is empty: ta ask 'What is overfitting?'")
    tutor = Tutor(load_from_args(args))
    for piece in tutor.stream(question):
        print(piece, end="", flush=True)
    print()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal chat; history is kept for follow-up questions. Empty line or Ctrl-D ends it."""
    from tutor.explain import Tutor

    tutor = Tutor(load_from_args(args))
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
    model = load_from_args(args)
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


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the Gradio app (imported here: only app.py knows gradio)."""
    try:
        import app
    except ImportError as exc:
        raise CLIError(f"the web app needs gradio ({exc}): reinstall the project (see README.md)") from exc
    if args.queue_max is not None and args.queue_max < 1:
        raise CLIError(f"--queue-max must be at least 1, got {args.queue_max}")
    return app.serve(
        model=args.model,
        backend=args.backend,
        adapter=args.adapter,
        host=args.host,
        port=args.port,
        queue_max=args.queue_max or app.QUEUE_MAX,
    )
