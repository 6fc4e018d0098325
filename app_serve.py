"""Serving the page: ``ta serve`` (the ``serve`` entry point, :func:`register`) and ``python app.py`` (:func:`main`).

Both load the model named at start-up (never one named by the page), build the page (:mod:`app`) on it and launch
Gradio with the same flags, defaults and environment fallbacks: a Hugging Face Space sets ``PORT`` and ``SPACE_ID``
(bind every address there), ``TA_HOST`` and ``TA_MODEL`` override. A call Gradio cannot queue is answered with a
4xx saying why (:func:`api_errors`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import app_progress as progress_page
from app import CSS, MAX_UPLOAD, QUEUE_MAX, build_app
from tutor.cli import CLIError, add_model_args, exit_at_once, load_from_args
from tutor.engine import keep_no_call_history
from tutor.errors import TutorError
from tutor.threads import limit_malloc_arenas

if TYPE_CHECKING:
    from quizgen.program import QuizAgent
    from tutor.explain import Tutor


class Programs(NamedTuple):
    """What the page runs on one model: ``build_app(*make_programs(model))``."""

    tutor: Tutor  # the model-only tutor: the "none (model only)" choice
    quiz_agent: QuizAgent
    grounded: Callable[[str], Any]  # a knowledge base's name -> the tutor that answers from it, citing it


def make_programs(model: Any) -> Programs:
    """The tutors and the quiz agent over ``model`` (the page borrows the model; it never closes it)."""
    from quizgen.program import QuizAgent
    from tutor.explain import Tutor
    from tutor.grounded import GroundedTutor
    from tutor.knowledge import open_kb

    return Programs(Tutor(model), QuizAgent(model), lambda name: GroundedTutor(model, open_kb(name)))


def api_errors() -> dict[Any, Any]:
    """FastAPI exception handlers: a call Gradio cannot queue is a 4xx saying why, not a 500 and a dropped connection.

    Gradio's routes raise for an unknown endpoint (FnIndexInferError), a wrong or missing parameter name on the curl
    route (TypeError, KeyError) and an empty session_hash (KeyError) before anything of ours runs (found by
    tests/test_fuzz_http.py). Only POSTs to /gradio_api/call/ get a 400: anything else stays a 500 (a bug keeps its
    traceback in the log either way).
    """
    from fastapi.responses import JSONResponse, PlainTextResponse
    from gradio.route_utils import API_PREFIX, FnIndexInferError

    async def no_such_endpoint(request: Any, exc: Exception) -> Any:
        return JSONResponse({"detail": f"{exc}: this app's API is /chat, /quiz and /answer"}, status_code=404)

    async def call_not_queued(request: Any, exc: Exception) -> Any:
        if request.method != "POST" or not request.url.path.startswith(f"{API_PREFIX}/call/"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return JSONResponse(
            {"detail": f"the call was not queued ({type(exc).__name__}: {exc}): see 'Use via API' for its parameters"},
            status_code=400,
        )

    return {FnIndexInferError: no_such_endpoint, Exception: call_not_queued}


def launch(demo: Any, host: str = "127.0.0.1", port: int = 7860, block: bool = True, auth: Any = None) -> Any:
    """Start the server: no share link, uploads capped, no server-side rendering (it would need Node).

    ``auth``: Gradio's login callback (``tutor.progress.accounts.Login(store).check``) on a server with accounts.
    """
    import gradio as gr

    limit_malloc_arenas()  # before the server's worker threads start allocating
    keep_no_call_history()
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        max_file_size=MAX_UPLOAD,
        show_error=True,
        ssr_mode=False,
        prevent_thread_lock=not block,
        auth=auth,
        auth_message="Log in with the name and password your teacher gave you." if auth else None,
        theme=gr.themes.Soft(),
        css=CSS,
        app_kwargs={"exception_handlers": api_errors()},
    )


def register(sub: Any) -> None:
    """Add ``serve`` to ``ta`` (the ``serve`` entry point); ``python app.py`` parses the same flags."""
    env = os.environ
    # A Hugging Face Space sets SPACE_ID and reaches the app through its proxy: bind all addresses there.
    host = env.get("TA_HOST") or ("0.0.0.0" if env.get("SPACE_ID") else "127.0.0.1")
    p = sub.add_parser("serve", help="run the web app (chat and quiz)")
    add_model_args(p)
    p.set_defaults(model=env.get("TA_MODEL") or "default", func=cmd_serve)
    p.add_argument("--host", default=host, help=f"address to bind (default: $TA_HOST, else {host})")
    p.add_argument(
        "--port",
        type=int,  # argparse converts a string default too, so a bad $PORT is a usage error, not a traceback
        default=env.get("PORT") or env.get("GRADIO_SERVER_PORT") or "7860",
        help="port (default: $PORT, else $GRADIO_SERVER_PORT, else 7860)",
    )
    p.add_argument(
        "--queue-max",
        type=int,
        default=QUEUE_MAX,
        metavar="N",
        help=f"requests that may wait at once (default: {QUEUE_MAX})",
    )
    p.add_argument(
        "--program",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a program written by `ta optimize quiz|tutor` (repeat for both)",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the model the command line names (never one named by the page) and serve the app until stopped."""
    if args.queue_max < 1:
        raise CLIError(f"--queue-max must be at least 1, got {args.queue_max}")
    try:
        import gradio  # noqa: F401 - checked before the model loads
    except ImportError as exc:
        raise CLIError(f"the web app needs gradio ({exc}): reinstall the project (see README.md)") from exc
    from tutor.optimize import load_into, read_program_file
    from tutor.progress.tracker import for_serving

    for path in args.program:  # a bad program file fails before the model loads
        read_program_file(path)
    progress = for_serving()  # None without accounts: the anonymous page, nothing stored
    model = load_from_args(args)
    programs = make_programs(model)
    load_into(args.program, programs.tutor, programs.quiz_agent)
    demo = build_app(
        *programs, queue_max=args.queue_max, progress=progress, model_concurrency=getattr(model, "concurrency", 1)
    )
    auth = progress_page.login(progress) if progress is not None else None
    launch(demo, host=args.host, port=args.port, auth=auth)
    return 0


def main() -> None:
    """``python app.py [flags]`` is ``ta serve [flags]``: a Space runs it without installing the ``ta`` command."""
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser(prog="python app.py", description="Serve the web app.")
    register(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args(["serve", *sys.argv[1:]])
    try:
        code = arguments.func(arguments)
    except TutorError as exc:
        parser.exit(2, f"app.py: error: {exc}\n")
    # Stopped (Ctrl-C, SIGTERM): end now, as `ta serve` does; the interpreter's teardown can wait on worker threads.
    exit_at_once(code)
