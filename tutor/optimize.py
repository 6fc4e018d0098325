"""Optimise the DSPy programs, save them, load them: ``ta optimize quiz|tutor`` and ``--program FILE``.

What an optimizer can tune here, honestly:

* **quiz**: the ungrounded writer (:class:`quizgen.program.QuizAgent` with ``grounded=False``): the ``plan``,
  ``write`` and ``blind`` predictors' demos (BootstrapFewShot) and instructions (MIPROv2, GEPA). The default,
  grounded quiz is built by rule from course sentences; its one model step that is not a DSPy call is the
  open-book check by log-likelihood (see :meth:`quizgen.grounded.GroundedQuizAgent.verify`), so a saved program
  changes a grounded quiz only through the blind answer, which is a difficulty signal there, not a check.
* **tutor**: the DSPy tutor (:class:`tutor.explain.Tutor`, ``ta ask --ungrounded`` and the page's model-only
  chat): its instructions and demos. The default tutor answers with sentences of the course chosen under a
  grammar (:mod:`tutor.grounded`): there is no prompt or demo in it to tune.

Metrics are plain functions over ``(example, prediction, trace=None)``, as DSPy wants them: the quiz's is the
quality figures of ``ta quiz-eval`` (:func:`quiz_score`), the tutor's the reference-fact score of
``scripts/tutor_eval.py`` (:func:`tutor_score`). Both also answer GEPA's five-argument form with feedback.

A saved program is DSPy's own state (``module.dump_state()``) inside a record of what it was compiled for: the
program, the model, the optimizer, the package versions, the dev scores. Loading it on another model warns
(:class:`ProgramMismatchWarning`): demos bootstrapped from one model's outputs may not suit another.
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from tutor.errors import InputError

PROGRAMS = ("quiz", "tutor")
OPTIMIZERS = ("bootstrap", "mipro", "gepa")
FORMAT = 1  # the saved file's layout version
QUIZ_PASS = 2 / 3  # a quiz whose score reaches this becomes a bootstrapped demo
PACKAGES = ("ml-tutor", "dspy", "llama-cpp-python", "transformers", "pydantic")
DATA = Path(__file__).resolve().parent / "optimize_data"  # the fixed train / dev / held-out splits


class ProgramFileError(InputError):
    """A program file that cannot be read, or is for another program: the message says what to pass."""


class ProgramMismatchWarning(UserWarning):
    """A program loaded on a model (or DSPy) other than the one it was compiled for."""


# ---- data ------------------------------------------------------------------------------------------


def read_split(kind: str, path: Path) -> list[Any]:
    """The examples of a JSON-lines split file for ``kind`` ("quiz": topics; "tutor": questions with keywords)."""
    import dspy

    if not Path(path).is_file():
        raise InputError(f"no split file at {path}: pass a JSON-lines file (see {DATA} for the shipped splits)")
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise InputError(f"{path} holds no examples: write one JSON object per line")
    need = {"quiz": "topic", "tutor": "question"}[kind]
    for i, row in enumerate(rows, 1):
        if need not in row or (kind == "tutor" and "keywords" not in row):
            raise InputError(f"{path} line {i} has no {need!r}{' or keywords' if kind == 'tutor' else ''}: {row}")
    if kind == "quiz":
        defaults = {"n": 2, "seed": 0, "difficulty": "medium", "grounded": False}
        return [
            dspy.Example(**{**defaults, **row}).with_inputs("topic", "n", "seed", "difficulty", "grounded")
            for row in rows
        ]
    # The reference fact is the example's answer: a labeled demo shows the model a short, true reply.
    return [dspy.Example(**row, answer=row.get("fact", "")).with_inputs("question") for row in rows]


# ---- metrics (plain functions) ---------------------------------------------------------------------


def quiz_report(example: Any, pred: Any) -> Any:
    """The quiz-eval figures of the prediction's quiz (:func:`quizgen.evaluate.score_quiz`)."""
    from quizgen.evaluate import score_quiz

    quiz = pred.quiz
    return score_quiz(quiz, quiz.metadata.seconds, requested=getattr(example, "n", None))


def quiz_score(example: Any, pred: Any) -> float:
    """A quiz's quality, 0..1: the quiz-eval figures as shares of the questions asked for.

    The mean of the shares that pass the checks, are verified and are acceptable, less the share that repeat an
    earlier stem.
    """
    r = quiz_report(example, pred)
    if not r.requested:
        return 0.0
    good = (r.checks_passed + r.verified + r.acceptable) / (3 * r.requested)
    return max(0.0, good - r.duplicate_stems / r.requested)


def quiz_good_questions(example: Any, pred: Any) -> tuple[int, int]:
    """(questions that pass every check, are verified and have at most one flaw, questions asked for)."""
    from quizgen import checks, flaws

    good, earlier = 0, []
    for item in pred.quiz.questions:
        q = item.question
        ok = not checks.check_question(q, earlier) and item.verified and len(flaws.flaws(q)) <= flaws.ACCEPTABLE_FLAWS
        good += ok
        earlier.append(q)
    return good, getattr(example, "n", len(pred.quiz.questions))


def quiz_metric(example: Any, pred: Any, trace: Any = None, pred_name: str | None = None, pred_trace: Any = None):
    """DSPy metric: the score (evaluation), pass/fail (bootstrapping: ``trace`` set), score + feedback (GEPA)."""
    score = quiz_score(example, pred)
    if pred_name is not None or pred_trace is not None:
        import dspy

        issues = sorted({i for item in pred.quiz.questions for i in item.issues})
        feedback = "; ".join(issues)[:1500] or "every question passed its checks and verification"
        return dspy.Prediction(score=score, feedback=feedback)
    return score >= QUIZ_PASS if trace is not None else score


def tutor_score(example: Any, pred: Any) -> float:
    """1.0 when the answer states the reference fact (every keyword group present), else 0.0."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from tutor_eval import states_fact

    return float(states_fact(pred.answer, example.keywords))


def tutor_metric(example: Any, pred: Any, trace: Any = None, pred_name: str | None = None, pred_trace: Any = None):
    """DSPy metric for the tutor: states the fact (bool when bootstrapping), with feedback for GEPA."""
    score = tutor_score(example, pred)
    if pred_name is not None or pred_trace is not None:
        import dspy

        feedback = "correct" if score else f"the answer should state: {example.fact}"
        return dspy.Prediction(score=score, feedback=feedback)
    return bool(score) if trace is not None else score


METRICS: dict[str, Callable[..., Any]] = {"quiz": quiz_metric, "tutor": tutor_metric}


# ---- programs --------------------------------------------------------------------------------------


def build_program(kind: str, model: Any) -> Any:
    """The unoptimised program of ``kind`` on ``model``."""
    if kind == "quiz":
        from quizgen.program import QuizAgent

        return QuizAgent(model)
    if kind == "tutor":
        from tutor.explain import Tutor

        return Tutor(model)
    raise InputError(f"unknown program {kind!r}: use one of {', '.join(PROGRAMS)}")


def versions() -> dict[str, str]:
    """The versions of Python and the packages a program's behaviour depends on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def save_program(program: Any, kind: str, model: Any, path: Path, **info: Any) -> Path:
    """Write ``program``'s state with what it was compiled for (model, versions, ``info``); atomically."""
    record = {
        "format": FORMAT,
        "program": kind,
        "class": f"{type(program).__module__}.{type(program).__qualname__}",
        "model": model.name,
        "backend": model.backend,
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 - readable
        **info,
        "state": program.dump_state(),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=_jsonable), encoding="utf-8")
    tmp.replace(path)
    return path


def read_program_file(path: Path, kind: str | None = None) -> dict[str, Any]:
    """A saved program's record, checked: a JSON file this module wrote (for ``kind``, when given)."""
    path = Path(path)
    if not path.is_file():
        raise ProgramFileError(f"no program file at {path}: write one with `ta optimize {kind or 'quiz'} ...`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProgramFileError(f"{path} is not a program file ({exc}): pass the --out file of `ta optimize`") from exc
    if not isinstance(record, dict) or "state" not in record or record.get("program") not in PROGRAMS:
        raise ProgramFileError(f"{path} is not a program file: pass the --out file of `ta optimize`")
    if kind is not None and record["program"] != kind:
        raise ProgramFileError(f"{path} holds a {record['program']} program, not a {kind} one: pass a {kind} program")
    return record


def load_program(path: Path, model: Any, kind: str | None = None, program: Any = None) -> Any:
    """The program saved at ``path``, on ``model`` (into ``program`` when given); warns on another model.

    Raises:
        ProgramFileError: for a missing or foreign file, or a program of another kind.
    """
    record = read_program_file(path, kind)
    program = program if program is not None else build_program(record["program"], model)
    mismatch = []
    if record.get("model") != model.name:
        mismatch.append(f"model {record.get('model')!r}, not {model.name!r}")
    saved_dspy, dspy_now = record.get("versions", {}).get("dspy"), versions()["dspy"]
    if saved_dspy != dspy_now:
        mismatch.append(f"dspy {saved_dspy}, not {dspy_now}")
    if mismatch:
        warnings.warn(
            f"{path} was compiled for {' and '.join(mismatch)}: its demos and instructions were chosen on that "
            "model and may not help this one (run `ta optimize` again for it)",
            ProgramMismatchWarning,
            stacklevel=2,
        )
    try:
        program.load_state(record["state"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProgramFileError(
            f"{path} does not fit the {record['program']} program ({exc}): optimise it again"
        ) from exc
    return program


def load_into(paths: list[Path], tutor: Any = None, quiz_agent: Any = None) -> None:
    """Load each saved program into the program of its kind (``ta serve --program FILE``, repeatable).

    Every file is read and checked first, so a bad one fails before any is applied.
    """
    targets = {"tutor": tutor, "quiz": quiz_agent}
    records = [(Path(path), read_program_file(path)) for path in paths]
    for path, record in records:
        if targets[record["program"]] is None:
            raise ProgramFileError(f"{path} holds a {record['program']} program, which is not served here")
    for path, record in records:
        target = targets[record["program"]]
        load_program(path, target.model, record["program"], target)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot save {type(value).__name__} in a program file")


# ---- optimisation ----------------------------------------------------------------------------------


@dataclass
class OptimizeConfig:
    """What ``ta optimize`` runs; each field is a flag of the same name."""

    kind: str  # "quiz" | "tutor"
    optimizer: str = "bootstrap"  # bootstrap | mipro | gepa
    demos: int = 2  # bootstrapped demos per predictor at most
    labeled: int = 0  # labeled demos (training examples as they are) per predictor; the tutor's carry the fact
    auto: str = "light"  # MIPROv2 / GEPA budget
    trials: Path | None = None  # where model calls (and GEPA's state) are kept, so a rerun resumes


def make_optimizer(config: OptimizeConfig, lm: Any) -> Any:
    """The DSPy optimizer ``config`` names, with the program's metric and one thread."""
    import dspy

    metric = with_progress(METRICS[config.kind], config.kind)
    if config.optimizer == "bootstrap":
        return dspy.BootstrapFewShot(
            metric=metric, max_bootstrapped_demos=config.demos, max_labeled_demos=config.labeled, max_rounds=1
        )
    if config.optimizer == "mipro":
        try:
            import optuna  # noqa: F401 - MIPROv2 imports it only once its trials begin: fail now instead
        except ImportError as exc:
            raise InputError("--optimizer mipro needs optuna: pip install optuna (or use bootstrap or gepa)") from exc
        return dspy.MIPROv2(
            metric=metric,
            auto=config.auto,
            prompt_model=lm,
            task_model=lm,
            max_bootstrapped_demos=config.demos,
            max_labeled_demos=config.labeled,
            num_threads=1,
            verbose=True,
        )
    if config.optimizer == "gepa":
        log_dir = str(config.trials / "gepa") if config.trials else None
        return dspy.GEPA(metric=metric, auto=config.auto, reflection_lm=lm, num_threads=1, log_dir=log_dir)
    raise InputError(f"unknown optimizer {config.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")


def evaluate(program: Any, kind: str, examples: list[Any], label: str = "", progress: bool = True) -> list[float]:
    """The metric's score of ``program`` on each example (a crash scores 0 and is said), one thread."""
    scores = []
    for i, example in enumerate(examples, 1):
        started = time.perf_counter()
        try:
            score = float(METRICS[kind](example, program(**example.inputs())))
        except Exception as exc:  # a crash is a score of 0, said on stderr: the run goes on
            print(f"  {label} {i}: {type(exc).__name__}: {exc}", file=sys.stderr)
            score = 0.0
        scores.append(score)
        if progress:
            what = example.topic if kind == "quiz" else example.question[:50]
            elapsed = time.perf_counter() - started
            print(f"  {label} {i}/{len(examples)} {what!r}: {score:.2f} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
    return scores


def with_progress(metric: Callable[..., Any], kind: str) -> Callable[..., Any]:
    """``metric`` that prints each example it scores (the optimizers' own bars say little on one thread)."""
    count = [0]

    def shown(example: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        result = metric(example, pred, trace, pred_name, pred_trace)
        count[0] += 1
        what = example.topic if kind == "quiz" else example.question[:50]
        value = getattr(result, "score", result)
        print(f"  trial {count[0]}: {what!r} -> {float(value):.2f}", file=sys.stderr, flush=True)
        return result

    return shown


@contextlib.contextmanager
def trial_cache(trials: Path | None, model: Any) -> Iterator[None]:
    """Keep every model call on disk under ``trials`` while inside: a rerun replays the calls already made.

    The calls are seeded, so a rerun asks exactly the same requests and reads them back instead of decoding: an
    interrupted optimisation restarts where it stopped (for every optimizer; GEPA also keeps its own state there).
    The directory is tied to one model (its name is written there) so two models' calls never mix. DSPy's cache
    is global: the one in force before is restored on the way out.
    """
    if trials is None:
        yield
        return
    import dspy

    trials.mkdir(parents=True, exist_ok=True)
    stamp = trials / "model.txt"
    if stamp.exists() and stamp.read_text(encoding="utf-8").strip() != model.name:
        raise InputError(f"{trials} holds the trials of {stamp.read_text().strip()!r}: pass another --trials DIR")
    stamp.write_text(model.name + "\n", encoding="utf-8")
    before = dspy.cache
    dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=str(trials / "calls"))
    try:
        yield
    finally:
        with dspy._cache_lock:
            dspy.cache = before


def optimize(
    config: OptimizeConfig, model: Any, train: list[Any], dev: list[Any] | None = None, out: Path | None = None
) -> tuple[Any, dict[str, Any]]:
    """Compile the ``config.kind`` program on ``train``; score it and the unoptimised one on ``dev``; save to ``out``.

    Returns the compiled program and its record (dev scores, timings).
    """
    import dspy

    student = build_program(config.kind, model)
    info: dict[str, Any] = {"optimizer": config.optimizer, "train": len(train), "dev": len(dev or [])}
    optimizer = make_optimizer(config, student.lm)
    started = time.perf_counter()
    print(f"optimising the {config.kind} program with {config.optimizer} on {len(train)} examples", file=sys.stderr)
    student.lm.cache = config.trials is not None
    try:
        with trial_cache(config.trials, model), dspy.context(lm=student.lm):
            if config.optimizer == "bootstrap":
                compiled = optimizer.compile(student, trainset=train)
            elif config.optimizer == "mipro":
                compiled = optimizer.compile(student, trainset=train, valset=dev or None)
            else:
                compiled = optimizer.compile(student, trainset=train, valset=dev or train)
    finally:
        student.lm.cache = False  # shared by the compiled copy: two quizzes on one topic should still differ
    info["compile_seconds"] = round(time.perf_counter() - started, 1)
    info["demos"] = {name: len(p.demos) for name, p in compiled.named_predictors()}
    if dev:
        base = evaluate(build_program(config.kind, model), config.kind, dev, "dev before")
        after = evaluate(compiled, config.kind, dev, "dev after")
        info["dev_before"], info["dev_after"] = _mean(base), _mean(after)
        print(f"dev: {info['dev_before']:.2f} before, {info['dev_after']:.2f} after", file=sys.stderr)
    if out is not None:
        save_program(compiled, config.kind, model, out, **info)
    return compiled, info


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# ---- the command -----------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add ``ta optimize`` (called from :func:`tutor.commands.register`)."""
    from tutor import cli

    p = sub.add_parser("optimize", help="tune the quiz or tutor program with a DSPy optimizer and save it")
    p.add_argument("program", choices=PROGRAMS, help="quiz: the ungrounded quiz writer; tutor: the DSPy tutor")
    p.add_argument("--train", type=Path, required=True, metavar="FILE", help="JSON lines: topics or questions")
    p.add_argument("--dev", type=Path, metavar="FILE", help="JSON lines scored before and after (and by MIPRO/GEPA)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="bootstrap")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the program file to write (JSON)")
    p.add_argument("--demos", type=int, default=2, help="bootstrapped demos per predictor at most (default 2)")
    p.add_argument("--labeled", type=int, default=0, help="labeled demos per predictor (default 0)")
    p.add_argument("--auto", choices=("light", "medium", "heavy"), default="light", help="MIPROv2/GEPA budget")
    p.add_argument(
        "--trials",
        type=Path,
        metavar="DIR",
        help="keep model calls here so an interrupted run resumes (default: OUT.trials)",
    )
    cli.add_model_args(p)
    p.set_defaults(func=cmd_optimize)


def cmd_optimize(args: Any) -> int:
    """Run the optimizer and write the program file."""
    from tutor import cli

    train = read_split(args.program, args.train)
    dev = read_split(args.program, args.dev) if args.dev else None
    if not args.out.parent.is_dir():
        raise InputError(f"no directory {args.out.parent} for --out: create it or pass another path")
    trials = args.trials or args.out.with_name(args.out.name + ".trials")
    config = OptimizeConfig(args.program, args.optimizer, args.demos, args.labeled, args.auto, trials)
    _, info = optimize(config, cli.load_from_args(args), train, dev, args.out)
    print(f"wrote {args.out} ({info['demos']}, {info['compile_seconds']} s)", file=sys.stderr)
    return 0
