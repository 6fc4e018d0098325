"""A benchmark run you can trust: a :class:`RunSpec` in, a directory with its config, every answer, and a summary out.

``out/config.json``       what ran: the spec (task, mode, model, adapter, data, split, limit or sample, seed,
                          batch size) and what the run found (the model's name and backend, the data file's
                          sha256, the questions' hash, versions)
``out/predictions.jsonl`` one line per answered question, appended (and flushed) as it is scored,
                          rewritten in the task's question order once all are answered
``out/summary.json``      written last, only when every question is answered (``complete: true``)
``out/results.json``      the same summary in lm-evaluation-harness's results-JSON shape (``benchmarks.harness``)
``out/debias.json``       ``--debias pride`` only: the prior over letters and the passes it was estimated from

Resuming: a run pointed at a directory with the same config skips the ids already in
predictions.jsonl (a line cut off by a crash is dropped and its question asked again); a directory
holding a different run is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from benchmarks import debias as debiasing
from benchmarks.errors import BenchError
from benchmarks.harness import harness_results
from benchmarks.modes import MODES, Prediction, Scorer, get_mode
from benchmarks.tasks import MCQuestion, check_subset, get_task, load_task

if TYPE_CHECKING:
    from tutor.models.base import Model

Z95 = 1.959963984540054
PACKAGES = ("ml-tutor", "torch", "transformers", "llama_cpp_python", "outlines", "outlines_core", "datasets", "peft")
# A resumed run must match on these; anything else in config.json (versions, batch size, times) may differ.
# Absent keys read as None, so directories written before a key existed still resume.
SAME_RUN_KEYS = ("task", "mode", "model", "backend", "adapter", "data_sha256", "questions_sha256", "seed", "debias")


class RunError(BenchError):
    """A run directory cannot be used as asked; the message says what to do."""


@dataclass(frozen=True)
class RunSpec:
    """One benchmark run as asked: what ``ta bench run`` builds from its flags (which mirror these fields).

    It checks itself when made: an unknown task or mode, or a bad ``limit``, ``sample`` or ``batch_size``
    fails here, before a model loads. :func:`run` writes it into config.json with what the run found.
    """

    task: str  # a name in benchmarks.tasks.TASKS
    mode: str = "letter"  # a name in benchmarks.modes.MODES
    model: str | None = None  # the spec the model was loaded from (default | FILE.gguf | DIR | hf:org/name), recorded
    backend: str | None = None  # the backend asked for (None: the registry chose); config.json records the one used
    adapter: str | None = None  # a PEFT adapter directory applied to the model
    data: Path | str | None = None  # a local file, or a directory laid out like ../shared/data; None: the dataset hub
    split: str | None = None  # the hub split, or that split's file inside a data directory; None: the task's own
    limit: int | None = None  # the first N questions only
    sample: int | None = None  # N questions drawn at random with ``seed``, kept in file order
    seed: int = 0  # TruthfulQA's answer shuffle and the sample's draw
    batch_size: int | None = None  # questions per model call; None: the mode's own
    out: Path | str | None = None  # the run directory (not itself in config.json); None: runs/TASK-MODE-MODEL
    debias: str | None = None  # letter modes: "pride" or "cyclic" removes the position prior (benchmarks.debias)

    def __post_init__(self) -> None:
        get_task(self.task)
        get_mode(self.mode)
        check_subset(self.limit, self.sample)
        if self.batch_size is not None and self.batch_size < 1:
            raise BenchError(f"--batch-size must be at least 1, got {self.batch_size}")
        debiasing.check(self.debias, self.mode)
        if self.debias == "none":
            object.__setattr__(self, "debias", None)  # one spelling of "no debiasing" in config.json

    @property
    def directory(self) -> Path:
        """The run directory: ``out``, or runs/TASK-MODE-MODEL when not given."""
        if self.out is not None:
            return Path(self.out)
        mode = self.mode + (f"+{self.debias}" if self.debias else "")
        return Path("runs") / f"{self.task}-{mode}-{Path(self.model or 'model').stem}"

    def questions(self) -> list[MCQuestion]:
        """The questions this run asks, loaded and validated (errors name the file and row)."""
        return load_task(self.task, self.data, split=self.split, limit=self.limit, seed=self.seed, sample=self.sample)

    def whole_set(self) -> RunSpec:
        """The same run over every question (no limit, no sample): what a subset is compared with."""
        return replace(self, limit=None, sample=None)


# ---- statistics -----------------------------------------------------------------------------------


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (sensible at 0, 1 and small n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """A normal-approximation interval for the mean of scores in [0, 1] (MC2's probability mass)."""
    n = len(values)
    if n < 2:
        return (0.0, 1.0)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return (max(0.0, mean - z * sd / math.sqrt(n)), min(1.0, mean + z * sd / math.sqrt(n)))


def summarize(rows: list[dict[str, Any]], config: dict[str, Any], n_total: int) -> dict[str, Any]:
    """Accuracy (mean score), its 95% interval, parse failures and throughput over the answered rows."""
    n = len(rows)
    mass = config.get("scoring") == "mass"
    scores = [float(r["score"]) for r in rows]
    accuracy = sum(scores) / n if n else 0.0
    interval = mean_interval(scores) if mass else wilson(sum(scores), n)
    seconds = sum(float(r.get("seconds", 0.0)) for r in rows)
    summary: dict[str, Any] = {
        "task": config["task"],
        "mode": config["mode"],
        "debias": config.get("debias"),
        "model": config["model"],
        "adapter": config.get("adapter"),
        "accuracy": round(accuracy, 6),
        "ci95": [round(interval[0], 6), round(interval[1], 6)],
        "interval": "normal (mean of probability mass)" if mass else "wilson",
        "n": n,
        "parse_failures": sum(1 for r in rows if not r["parsed"]),
        # How often each letter was answered, against how often it is the right one (tasks with one
        # right letter): a model stuck on one position shows here at once.
        "answered": dict(sorted(Counter(r["prediction"] for r in rows if r["prediction"]).items())),
        "questions_per_second": round(n / seconds, 4) if seconds > 0 else None,
    }
    if all(len(r["gold"]) == 1 for r in rows):
        summary["right"] = dict(sorted(Counter(r["gold"][0] for r in rows).items()))
    mode = MODES.get(config["mode"])
    if mode is not None and mode.norm and not mass:
        norm = sum(1 for r in rows if r["extra"].get("correct_norm"))
        lo, hi = wilson(norm, n)
        summary.update(accuracy_norm=round(norm / n, 6) if n else 0.0, ci95_norm=[round(lo, 6), round(hi, 6)])
    if config.get("debias"):  # the same questions read without debiasing: before and after from one run
        raw = [float(r["extra"]["score_raw"]) for r in rows]
        summary["accuracy_raw"] = round(sum(raw) / n, 6) if n else 0.0
        summary["answered_raw"] = dict(sorted(Counter(r["extra"]["prediction_raw"] for r in rows).items()))
    summary["complete"] = n == n_total
    return summary


# ---- config and provenance ------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def questions_sha256(questions: Sequence[MCQuestion]) -> str:
    """A hash of exactly what was asked (ids, texts, choice order, gold): covers hub data too."""
    canon = [[q.id, q.question, list(q.choices), list(q.gold), q.context] for q in questions]
    return hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode("utf-8")).hexdigest()


def versions() -> dict[str, str]:
    """Versions of the packages a score depends on (those installed)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def make_config(spec: RunSpec, model: Model, questions: Sequence[MCQuestion]) -> dict[str, Any]:
    """Everything needed to rerun (and to refuse mixing) this run: the spec, and what it found.

    The keys are those of every earlier config.json (plus ``batch_size`` and ``debias``), so old run directories
    resume.
    """
    if spec.backend is not None and spec.backend != model.backend:
        raise RunError(f"the spec asks for backend {spec.backend!r} but the model runs on {model.backend!r}")
    task = get_task(spec.task)
    path = task.local_file(spec.data, spec.split) if spec.data is not None else None
    return {
        "task": spec.task,
        "mode": spec.mode,
        "scoring": task.scoring,
        "model": model.name,
        "model_spec": spec.model,
        "backend": model.backend,
        "adapter": str(spec.adapter) if spec.adapter else None,
        "data": str(path) if path else f"hub:{task.hub[0]}/{task.hub[1]}",
        "data_sha256": sha256_file(path) if path else None,
        "split": spec.split or task.default_split,
        "limit": spec.limit,
        "sample": spec.sample,
        "n_questions": len(questions),
        "questions_sha256": questions_sha256(questions),
        "seed": spec.seed,
        "batch_size": spec.batch_size,
        "debias": spec.debias,
        "versions": versions(),
        "command": sys.argv,
    }


# ---- the run directory ----------------------------------------------------------------------------


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Complete lines of predictions.jsonl; a cut-off last line (a crash mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines):
                break  # the interrupted write; it is rewritten below and asked again
            raise RunError(f"{path} line {n} is not JSON: remove that line or start a new --out") from exc
    return rows


def prepare(out: Path, config: dict[str, Any], ids: set[str]) -> list[dict[str, Any]]:
    """Create or reopen the run directory; returns the predictions already made for ``ids``, deduplicated."""
    out.mkdir(parents=True, exist_ok=True)
    cfg_path, pred_path = out / "config.json", out / "predictions.jsonl"
    if cfg_path.is_file():
        try:
            old = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunError(f"{cfg_path} is not JSON: pass a new --out DIR") from exc
        diff = [k for k in SAME_RUN_KEYS if old.get(k) != config.get(k)]
        if diff:
            raise RunError(f"{out} holds a different run (differs in {', '.join(diff)}): pass a new --out DIR")
    elif pred_path.exists():
        raise RunError(f"{out} has predictions but no config.json: pass a new --out DIR")
    for stale in ("summary.json", "results.json"):  # no stale summary may claim this run complete
        (out / stale).unlink(missing_ok=True)
    cfg_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    rows = {r["id"]: r for r in read_predictions(pred_path) if r.get("id") in ids}
    _rewrite(pred_path, list(rows.values()))  # clean: no duplicates, no torn line
    return list(rows.values())


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` as JSONL; a crash midway leaves the old file whole."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    tmp.replace(path)


def run(model: Model, spec: RunSpec, *, progress: bool = True) -> dict[str, Any]:
    """Score ``spec.task`` with ``spec.mode``, writing the run directory; returns the summary.

    Questions are loaded (and validated) before anything is written: bad data never leaves a
    half-made run behind.
    """
    mode = get_mode(spec.mode)
    questions = spec.questions()
    config = make_config(spec, model, questions)
    out = spec.directory
    done = prepare(out, config, {q.id for q in questions})
    score = debiasing.prepare(model, mode, spec.debias, questions, out) if spec.debias else mode.score
    answered = {r["id"] for r in done}
    pending = [q for q in questions if q.id not in answered]
    if mode.length is not None:  # batches of like lengths pad less (sorted is stable: ties keep file order)
        pending.sort(key=mode.length)
    mass, step = config["scoring"] == "mass", spec.batch_size or mode.batch
    bar = _progress(len(questions), len(done), f"{spec.task}/{spec.mode}", progress)
    with (out / "predictions.jsonl").open("a", encoding="utf-8") as fh:
        for start in range(0, len(pending), step):
            batch = pending[start : start + step]
            done += _score(model, score, batch, mass, fh)
            bar.update(len(batch))
    bar.close()
    order = {q.id: i for i, q in enumerate(questions)}
    done.sort(key=lambda r: order[r["id"]])
    _rewrite(out / "predictions.jsonl", done)
    summary = summarize(done, config, len(questions))
    whole = len(spec.whole_set().questions()) if spec.limit or spec.sample else len(questions)
    results = harness_results(summary, config, done, whole)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _score(model: Model, score: Scorer, batch: list[MCQuestion], mass: bool, fh: IO[str]) -> list[dict[str, Any]]:
    """Score one batch and append its rows to the open predictions file, flushed: a crash loses at most a batch."""
    t0 = time.perf_counter()
    preds = score(model, batch, mass)
    each = (time.perf_counter() - t0) / len(batch)
    rows = [{**asdict(p), "seconds": round(each, 6)} for p in preds]
    fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    fh.flush()
    return rows


def _progress(total: int, initial: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="q", file=sys.stderr, disable=not enabled)


__all__ = ["Prediction", "RunError", "RunSpec", "mean_interval", "read_predictions", "run", "summarize", "wilson"]
