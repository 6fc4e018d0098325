"""The server backend against in-process llama.cpp on the same GGUF: parity on ARC-Challenge, then throughput.

    flock -w 5400 /tmp/team/heavy.lock .venv/bin/python scripts/server_parity.py [--data ../shared/data]
        [--limit N] [--start N] [--threads 1] [--bench-limit 60] [--url URL] [--no-throughput] [--no-validity]

Starts llama-cpp-python's server on the embedded GGUF (one thread; ``--url`` uses a running server instead)
and scores the shared ARC-Challenge validation file (299 questions) both ways:

* ``loglik``: every choice's log-likelihood, in-process vs through the server: the largest absolute
  difference, the share within 1e-3, and how often the argmax agrees;
* ``letter``: the chosen letter, in-process vs through the server;

and lists the questions where the two disagree (``differ``).

Figures are printed after every ``--chunk`` questions (a run cut short still reports). First, though, ``letter``
runs of ``--bench-limit`` questions through the server (``benchmarks.run``, as ``ta bench run`` does) with 4
requests in flight and with 1, one after the other in this process: seconds and the ratio. Last,
the validity script's 5 schemas x 20 prompts through the server (``--no-validity`` skips them).
Prints one JSON object per figure and the load (``os.getloadavg``) next to each timing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load() -> str:
    """The 1/5/15-minute load averages, for the line beside a timing."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Tally:
    """Running parity figures over the questions scored so far (printed after every chunk)."""

    def __init__(self) -> None:
        self.diffs: list[float] = []
        self.loglik_same = self.letter_same = self.n = 0
        self.prob_diff = 0.0
        self.differ: list[str] = []  # "mode:question id" where the two disagree
        self.seconds = {"loglik_in_process": 0.0, "loglik_server": 0.0, "letter_in_process": 0.0, "letter_server": 0.0}

    def add(self, local, server, questions) -> None:
        """Score ``questions`` both ways in both modes and add them up."""
        from benchmarks import modes

        here, there = self._timed("loglik", modes.loglik, local, server, questions)
        self.diffs += [abs(a.scores[k] - b.scores[k]) for a, b in zip(here, there, strict=True) for k in a.scores]
        self.loglik_same += self._same("loglik", here, there)
        here, there = self._timed("letter", modes.letter, local, server, questions)
        self.letter_same += self._same("letter", here, there)
        pairs = zip(here, there, strict=True)
        self.prob_diff = max([self.prob_diff, *(abs(a.scores[k] - b.scores[k]) for a, b in pairs for k in a.scores)])
        self.n += len(questions)

    def _same(self, name, here, there) -> int:
        differ = [f"{name}:{a.id}" for a, b in zip(here, there, strict=True) if a.prediction != b.prediction]
        self.differ += differ
        return len(here) - len(differ)

    def _timed(self, name, mode, local, server, questions):
        t0 = time.perf_counter()
        here = mode(local, questions)
        t1 = time.perf_counter()
        there = mode(server, questions)
        self.seconds[f"{name}_in_process"] += t1 - t0
        self.seconds[f"{name}_server"] += time.perf_counter() - t1
        return here, there

    def figures(self) -> dict:
        """The parity figures so far."""
        return {
            "figure": "parity so far", "questions": self.n, "choices": len(self.diffs),
            "loglik_max_abs_diff": max(self.diffs),
            "loglik_within_1e-3": sum(d <= 1e-3 for d in self.diffs) / len(self.diffs),
            "loglik_argmax_agreement": self.loglik_same / self.n, "letter_agreement": self.letter_same / self.n,
            "letter_max_abs_prob_diff": self.prob_diff, "differ": self.differ,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()}, "load": load(),
        }  # fmt: skip


def throughput(url: str, data: Path, limit: int) -> dict:
    """``letter`` on ``limit`` questions through the server, 4 in flight then 1 (one run each, same process)."""
    from benchmarks.run import RunSpec, run
    from tutor.models import load_model

    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for in_flight in (4, 1):
            model = load_model(f"openai:{url}", max_in_flight=in_flight)
            spec = RunSpec(task="arc_challenge", mode="letter", model=f"openai:{url}", data=data,
                           split="validation", limit=limit, out=Path(tmp) / f"in-flight-{in_flight}")  # fmt: skip
            start = time.perf_counter()
            summary = run(model, spec, progress=False)
            seconds[in_flight] = (time.perf_counter() - start, summary, load())
            model.close()
    (s4, sum4, load4), (s1, sum1, load1) = seconds[4], seconds[1]
    return {
        "figure": "ta bench run letter through the server", "questions": limit,
        "seconds_4_in_flight": round(s4, 1), "load_4": load4, "seconds_1_in_flight": round(s1, 1), "load_1": load1,
        "speedup_4_vs_1": round(s1 / s4, 2), "accuracy_4": sum4.get("accuracy"), "accuracy_1": sum1.get("accuracy"),
    }  # fmt: skip


def validity(url: str) -> dict:
    """The validity script's 5 schemas x 20 prompts through the server, each output validated here."""
    from benchmarks.validity import invalid_outputs, prompts
    from tutor.models import load_model

    model = load_model(f"openai:{url}")
    start = time.perf_counter()
    invalid = invalid_outputs(model)
    model.close()
    total = len(prompts())
    return {
        "figure": "validity through the server", "valid": total - len(invalid), "total": total, "invalid": invalid,
        "seconds_per_generation": round((time.perf_counter() - start) / total, 2), "load": load(),
    }  # fmt: skip


def main() -> None:
    """Run the comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, help="the first N questions only (default: all 299)")
    parser.add_argument("--start", type=int, default=0, help="skip the first N of them (resume a run cut short)")
    parser.add_argument("--no-throughput", action="store_true", help="skip the 4-vs-1 in flight timing")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads, server and in-process alike")
    parser.add_argument("--bench-limit", type=int, default=32, help="questions per throughput run")
    parser.add_argument("--url", help="a running server's /v1 URL instead of starting one")
    parser.add_argument("--chunk", type=int, default=30, help="questions between printed figures")
    parser.add_argument("--no-validity", action="store_true", help="skip the 100 validity prompts at the end")
    args = parser.parse_args()

    from benchmarks.tasks import load_task
    from tutor.models import embedded, load_model
    from tutor.models.local_server import LocalServer

    questions = load_task("arc_challenge", args.data, split="validation", limit=args.limit)[args.start :]
    server = None if args.url else LocalServer(embedded.gguf_path(), threads=args.threads, alias=embedded.NAME)
    url = args.url or server.start()
    try:
        print(
            json.dumps({"server": url, "threads": args.threads, "questions": len(questions), "load": load()}),
            flush=True,
        )
        # Throughput first: the shortest figure, so that a run cut short by its lock's time still has it.
        if not args.no_throughput:
            print(json.dumps(throughput(url, args.data, args.bench_limit)), flush=True)
        local = load_model("default", n_threads=args.threads)
        remote = load_model(f"openai:{url}")
        tally = Tally()
        for at in range(0, len(questions), args.chunk):  # figures after every chunk: a cut-off run still reports
            tally.add(local, remote, questions[at : at + args.chunk])
            print(json.dumps(tally.figures()), flush=True)
        local.close()
        remote.close()
        if not args.no_validity:
            print(json.dumps(validity(url)), flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
