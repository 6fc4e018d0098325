"""Load test of the web app: concurrent gradio_client sessions, chat and quiz mixed, against one app.

    .venv/bin/python scripts/app_load.py                    # 8 sessions on the course, the default queue
    .venv/bin/python scripts/app_load.py --queue-max 4      # a small queue: some requests are told it is full
    .venv/bin/python scripts/app_load.py --kb "none (model only)"   # the model alone (ungrounded), as before

Starts the app as its own process (``ta serve``, on the embedded model), so that the memory measured is the
server's alone, not the clients'. Then runs N sessions at once; each asks the tutor a question, takes a quiz
on its own topic and answers its first question, all from the knowledge base ``--kb`` names (default: the
shipped course, what the page does unless a student picks otherwise). Every topic is one the course covers:
a grounded quiz refuses a topic its knowledge base has nothing on. It checks that every request was answered
or told the queue is full, that no session saw another's quiz (the quiz's topic and the graded explanation
are the session's own; past the ten topics sessions share a topic and only the graded explanation tells them
apart), and that the server's resident memory at the end is within 10% of its memory after the first
request. ``--warmup`` first runs one chat and one quiz alone and also reports growth from there.
Prints a JSON summary; exits 1 if a check fails. This is a measurement script, not a timed test.

Chats are streamed: ``chat_first_token`` is the time to a reply's first words, ``chat`` to its end.
``--lanes N`` serves with N model events at once (the llama.cpp model batches them; 1 is the one-lane build;
by default the app's own, the model's concurrency);
``--compare 1,4`` runs the one-lane build and the batched one back to back on the same sessions and prints both
summaries and the ratios (total time, p95 chat and quiz latency, peak memory):

    flock -w 5400 /tmp/team/heavy.lock .venv/bin/python scripts/app_load.py --sessions 8 --questions 5 --compare 1,4
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor.knowledge import COURSE  # noqa: E402 - after the path, so the script runs from a checkout
from tutor.tutors import NO_KB  # noqa: E402

TOPICS = [  # one per session, each covered by the starter course (a grounded quiz on anything else is refused)
    "overfitting",
    "gradient descent",
    "the softmax function",
    "decision trees",
    "dropout",
    "k-means clustering",
    "cross-validation",
    "the learning rate",
    "batch normalization",
    "logistic regression",
]
QUESTIONS = ["What is {t}?", "Explain {t} in two sentences.", "Why does {t} matter?"]


SERVER = {"pid": "self"}  # the process whose memory is measured: the server, once started


def rss_mib() -> float:
    """The server's resident memory in MiB (Linux)."""
    for line in Path(f"/proc/{SERVER['pid']}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Tally:
    """Outcomes and latencies of every request, shared by the session threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[dict[str, Any]] = []
        self.first_done = threading.Event()
        self.rss_first: float | None = None

    def add(self, session: int, kind: str, outcome: str, seconds: float, detail: str = "") -> None:
        """Record one request; the first success fixes the baseline memory."""
        with self.lock:
            self.rows.append(
                {"session": session, "kind": kind, "outcome": outcome, "s": round(seconds, 2), "detail": detail}
            )
            self.rows[-1]["rss_mib"] = round(rss_mib(), 1)  # the timeline shows a plateau or a climb
            if outcome == "ok" and self.rss_first is None:
                self.rss_first = rss_mib()
                self.first_done.set()


def call(tally: Tally, session: int, kind: str, fn: Any) -> Any:
    """Run one request; record ok / queue_full / error."""
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    start = time.perf_counter()
    try:
        result = fn()
    except QueueError as exc:
        tally.add(session, kind, "queue_full", time.perf_counter() - start, str(exc))
        return None
    except (AppError, Exception) as exc:  # any other failure is a failed check
        outcome = "queue_full" if "queue is full" in str(exc).lower() else "error"
        tally.add(session, kind, outcome, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
        return None
    tally.add(session, kind, "ok", time.perf_counter() - start)
    return result


def chat(client: Any, index: int, question: str, kb: str, tally: Tally) -> None:
    """One streamed chat: its whole time (``chat``) and the time to its first words (``chat_first_token``)."""
    firsts: list[float] = []
    start = time.perf_counter()

    def streamed() -> Any:
        job = client.submit(question, kb, api_name="/chat")
        for _update in job:  # the reply as it grows; the first update is the first words a student reads
            if not firsts:
                firsts.append(time.perf_counter() - start)
        return job.result()

    if call(tally, index, "chat", streamed) is not None and firsts:
        tally.add(index, "chat_first_token", "ok", firsts[0])


def session(url: str, index: int, args: argparse.Namespace, tally: Tally, mixups: list[str]) -> None:
    """One student: chat and quiz, in an order that depends on the session so the two kinds interleave."""
    from gradio_client import Client

    from quizgen import export

    client = Client(url, verbose=False)
    topic = TOPICS[index % len(TOPICS)]
    for rnd in range(args.rounds):
        steps = ["chat", "quiz"] if (index + rnd) % 2 == 0 else ["quiz", "chat"]
        for step in steps:
            if step == "chat":
                question = QUESTIONS[rnd % len(QUESTIONS)].format(t=topic)
                chat(client, index, question, args.kb, tally)
                continue
            text = call(
                tally, index, "quiz", lambda: client.predict(topic, args.questions, "easy", args.kb, api_name="/quiz")
            )
            if text is None:
                continue
            quiz = export.from_json(text)
            if quiz.topic != topic:
                mixups.append(f"session {index} asked for {topic!r} and got a quiz on {quiz.topic!r}")
            if not quiz.questions:
                continue
            question = quiz.questions[0].question
            feedback = call(tally, index, "answer", lambda q=question: client.predict(1, q.answer, api_name="/answer"))
            if feedback is not None:
                fb = json.loads(feedback)
                if not fb["correct"] or fb["explanation"] != question.explanation:
                    mixups.append(f"session {index} was graded on another quiz: {fb}")


def summarize(
    tally: Tally, rss_end: float, rss_warm: float | None, mixups: list[str], seconds: float
) -> dict[str, Any]:
    """Counts per kind and outcome, latencies, memory, and the three checks.

    Memory is checked against the server's resident size after the first answered request (the issue's
    measure); growth from after the warm-up is reported too when there was one.
    """
    counts: dict[str, dict[str, int]] = {}
    for row in tally.rows:
        counts.setdefault(row["kind"], {}).setdefault(row["outcome"], 0)
        counts[row["kind"]][row["outcome"]] += 1
    latency = {}
    for kind in counts:
        times = sorted(r["s"] for r in tally.rows if r["kind"] == kind and r["outcome"] == "ok")
        if times:
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            latency[kind] = {"median_s": times[len(times) // 2], "p95_s": p95, "max_s": times[-1]}
    errors = [r for r in tally.rows if r["outcome"] == "error"]
    first = tally.rss_first or float("nan")
    growth = (rss_end - first) / first
    return {
        "requests": len(tally.rows),
        "counts": counts,
        "latency": latency,
        "errors": errors[:10],
        "mixups": mixups,
        "rss_after_first_request_mib": round(first, 1),
        "rss_after_warmup_mib": round(rss_warm, 1) if rss_warm else None,
        "rss_end_mib": round(rss_end, 1),
        "rss_timeline_mib": [r["rss_mib"] for r in tally.rows],
        "rss_peak_mib": max((r["rss_mib"] for r in tally.rows), default=float("nan")),
        "rss_growth_from_first_request": round(growth, 4),
        "rss_growth_from_warmup": round((rss_end - rss_warm) / rss_warm, 4) if rss_warm else None,
        "wall_s": round(seconds, 1),
        "checks": {
            "every_request_answered_or_queue_full": not errors,
            "no_session_saw_another_quiz": not mixups,
            "memory_within_10_percent": abs(growth) <= 0.10,
        },
    }


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """``ta serve`` on a free port, as its own process; returns it and its URL once it answers."""
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = ["serve", "--model", args.model, "--port", str(port)]
    if args.queue_max:
        serve += ["--queue-max", str(args.queue_max)]
    command = [sys.executable, "-m", "tutor.cli", *serve]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("TA_MODEL_LANES", None)
    if args.lanes is not None:  # read when the page is built (app.LANES_ENV, which refuses 0); unset: the app's own
        env["TA_MODEL_LANES"] = str(args.lanes)
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the app exited: {server.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return server, url
        except OSError:
            time.sleep(1)
    server.kill()
    raise SystemExit("the app did not answer within 10 minutes")


def main() -> int:
    """Start the app, run the sessions, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="chat + quiz rounds per session")
    parser.add_argument("--questions", type=int, default=2, help="questions per quiz")
    parser.add_argument("--queue-max", type=int, default=None, help="the app's queue size (default: the app's)")
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--kb",
        default=COURSE,
        help=f"the knowledge base every chat and quiz reads: {COURSE!r} (default), a student's own, "
        f"or {NO_KB!r} for the model alone",
    )
    parser.add_argument("--warmup", action="store_true", help="one chat and one quiz alone before the sessions")
    parser.add_argument(
        "--lanes", type=int, default=None, help="model events the app runs at once (1: one lane; default: the app's)"
    )
    parser.add_argument("--compare", default=None, help="lanes of two builds run back to back, e.g. 1,4")
    args = parser.parse_args()
    if not args.compare:
        summary = run(args)
        print(json.dumps(summary, indent=2))
        return 0 if all(summary["checks"].values()) else 1
    summaries = [run(argparse.Namespace(**{**vars(args), "lanes": int(n)})) for n in args.compare.split(",")]
    base, new = summaries[0], summaries[-1]

    def ratio(get: Any) -> float | None:
        try:
            return round(get(new) / get(base), 2)
        except (KeyError, TypeError, ZeroDivisionError):
            return None

    print(json.dumps(summaries, indent=2))
    print(json.dumps({
        "lanes": args.compare,
        "total_time_ratio": ratio(lambda s: s["wall_s"]),
        "chat_p95_ratio": ratio(lambda s: s["latency"]["chat"]["p95_s"]),
        "chat_first_token_p95_ratio": ratio(lambda s: s["latency"]["chat_first_token"]["p95_s"]),
        "quiz_p95_ratio": ratio(lambda s: s["latency"]["quiz"]["p95_s"]),
        "peak_rss_ratio": ratio(lambda s: s["rss_peak_mib"]),
    }, indent=2))  # fmt: skip
    return 0 if all(all(s["checks"].values()) for s in summaries) else 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One build: start the app, run the sessions, stop it; the summary."""
    server, url = start_server(args)
    SERVER["pid"] = str(server.pid)
    try:
        rss_idle = rss_mib()
        tally, mixups = Tally(), []
        rss_warm = None
        if args.warmup:
            session(url, args.sessions, argparse.Namespace(**{**vars(args), "rounds": 1}), tally, mixups)
            rss_warm = rss_mib()
        start = time.perf_counter()
        threads = [threading.Thread(target=session, args=(url, i, args, tally, mixups)) for i in range(args.sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        summary = summarize(tally, rss_mib(), rss_warm, mixups, time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=60)
    summary["rss_idle_mib"] = round(rss_idle, 1)
    summary["settings"] = vars(args)
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
