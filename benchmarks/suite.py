"""An experiment in one YAML file, run with one command: ``ta bench suite EXPERIMENT.yaml``.

The file names models (any model spec: the embedded model, a GGUF file, a merged checkpoint, an adapter; one the
suite fine-tunes first from a recipe; or such a fine-tune exported, merged or as GGUF), tasks (with sample sizes),
modes (``letter``, ``loglik``..., ``letter+pride`` for debiased letters) and seeds. Every model x task x mode x seed
is a *cell*, run as an ordinary resumable run directory (``benchmarks.run``) under ``OUT/runs/``; a fine-tuned
model is trained once into ``OUT/train/NAME`` (and exported there, ``merged/`` or ``gguf/``, for an ``export_of``
entry). Then the suite writes, under ``OUT``:

``table.md``      the comparison table (accuracy % with 95% intervals), and each model against the first one on
                  the same questions: the difference with its 95% interval and a paired test
``plot.png``      the table as a bar chart
``results.json``  everything: the experiment, every cell's summary and lm-evaluation-harness results, the
                  training runs, the comparisons

Run it again after an interruption and it goes on where it stopped: a finished cell is never asked again (its
model is not even loaded), an unfinished one resumes its remaining questions, a finished training run is reused.

An experiment file (see experiments/original_table.yaml)::

    name: original_table
    data: ../shared/data                   # a directory laid out like ../shared/data (--data overrides)
    threads: 1
    models:
      - {name: baseline, model: default, backend: transformers}
      - name: finetuned
        finetune: {recipe: finetune/configs/smollm2-135m-lora-cpu.yaml, data: "{data}/instruct/sharegpt_sample.jsonl"}
    tasks:
      - {task: arc_challenge, split: train, sample: 500}
      - {task: truthfulqa_mc1}
    modes: [letter, loglik]
    seeds: [0]
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.errors import BenchError
from benchmarks.report import compare_table, load_summary, plot
from benchmarks.run import Z95, RunSpec, read_predictions, run

if TYPE_CHECKING:
    from tutor.models.base import Model

# --smoke: the whole experiment on 2 questions a task and 2 training steps on a dozen short conversations
SMOKE_QUESTIONS = 2
SMOKE_STEPS = 2
SMOKE_RECIPE = {"max_examples": 12, "eval_size": 2, "max_seq_len": 256, "batch_size": 2, "eval_steps": 0}


class SuiteError(BenchError):
    """An experiment file that cannot be run as written; the message names the field and what to write."""


@dataclass(frozen=True)
class FinetuneEntry:
    """How the suite trains a model before scoring it (``finetune.train`` with a recipe)."""

    recipe: str  # a recipe YAML (finetune/configs/...)
    data: str | None = None  # training data; "{data}" is replaced by the experiment's data directory
    max_steps: int | None = None  # optimizer steps (the recipe's own when None)
    set: dict[str, Any] = field(default_factory=dict)  # any other recipe keys, as `ta finetune --set` would


@dataclass(frozen=True)
class ModelEntry:
    """One model of the experiment: its row name in the table and how to load it."""

    name: str  # the row name, and the cells' directory prefix
    model: str = "default"  # any model spec (default | FILE.gguf | merged DIR | adapter DIR | hf:org/name)
    backend: str | None = None  # llamacpp | transformers (None: the registry chooses)
    adapter: str | None = None  # a PEFT adapter applied on top
    finetune: FinetuneEntry | None = None  # train first; the trained adapter is then the model
    export_of: str | None = None  # the name of an earlier finetune entry whose run this model is exported from
    export: str | None = None  # with export_of: "merged" (16-bit checkpoint) or a GGUF type (f16, q8_0, q4_k_m)


@dataclass(frozen=True)
class TaskEntry:
    """One task of the experiment, with the questions it asks."""

    task: str  # a name in benchmarks.tasks.TASKS
    split: str | None = None  # the split's file inside the data directory (the task's default when None)
    sample: int | None = None  # N questions drawn at random (with the cell's seed)
    limit: int | None = None  # the first N questions


@dataclass(frozen=True)
class Experiment:
    """An experiment file, parsed and checked (every task, mode and model field before anything runs)."""

    name: str
    models: tuple[ModelEntry, ...]
    tasks: tuple[TaskEntry, ...]
    modes: tuple[str, ...] = ("letter",)  # MODE or MODE+DEBIAS (letter+pride)
    seeds: tuple[int, ...] = (0,)
    data: str | None = None  # the data directory; None: the dataset hub (needs a network)
    threads: int | None = None  # CPU threads per model (1 on a shared machine)
    batch_size: int | None = None  # questions per model call (each mode's own when None)
    out: str | None = None  # where the suite writes (default: runs/suites/NAME)

    @property
    def directory(self) -> Path:
        """The suite's output directory."""
        return Path(self.out) if self.out else Path("runs") / "suites" / self.name

    def cells(self) -> list[Cell]:
        """Every model x task x mode x seed, in the order they run (a model's cells together)."""
        return [
            Cell(m, t, mode, seed)
            for m in self.models
            for t in self.tasks
            for mode in self.modes
            for seed in self.seeds
        ]

    def reduced(self, questions: int | None = None, max_steps: int | None = None, tiny: bool = False) -> Experiment:
        """The same experiment on fewer questions a task and fewer training steps (smoke and slow-tier runs)."""
        tasks = self.tasks
        if questions is not None:
            tasks = tuple(
                replace(t, sample=min(questions, t.sample), limit=None)
                if t.sample
                else replace(t, limit=min(questions, t.limit or questions))
                for t in tasks
            )
        models = tuple(
            replace(m, finetune=_reduced_finetune(m.finetune, max_steps, tiny)) if m.finetune else m
            for m in self.models
        )
        return replace(self, tasks=tasks, models=models)


def _reduced_finetune(entry: FinetuneEntry, max_steps: int | None, tiny: bool) -> FinetuneEntry:
    sets = {**entry.set, **(SMOKE_RECIPE if tiny else {})}
    return replace(entry, max_steps=max_steps if max_steps is not None else entry.max_steps, set=sets)


@dataclass(frozen=True)
class Cell:
    """One run of the experiment: a model on a task in a mode with a seed."""

    model: ModelEntry
    task: TaskEntry
    mode: str  # MODE or MODE+DEBIAS
    seed: int

    @property
    def name(self) -> str:
        """The cell's run directory name."""
        return f"{self.model.name}--{self.task.task}--{self.mode}--seed{self.seed}"

    def spec(self, exp: Experiment, model_spec: str, adapter: str | None) -> RunSpec:
        """The cell's :class:`RunSpec`."""
        mode, _, debias = self.mode.partition("+")
        return RunSpec(
            task=self.task.task,
            mode=mode,
            model=model_spec,
            backend=self.model.backend,
            adapter=adapter,
            data=exp.data,
            split=self.task.split,
            limit=self.task.limit,
            sample=self.task.sample,
            seed=self.seed,
            batch_size=exp.batch_size,
            out=exp.directory / "runs" / self.name,
            debias=debias or None,
        )


# ---- reading the file ---------------------------------------------------------------------------------


def _build(cls: type, values: Any, where: str) -> Any:
    """A dataclass from a mapping, refusing unknown keys and missing required ones with the field's place."""
    if not isinstance(values, dict):
        raise SuiteError(f"{where}: expected a mapping of {', '.join(f.name for f in fields(cls))}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SuiteError(f"{where}: unknown key {unknown[0]!r}: use {', '.join(sorted(known))}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise SuiteError(f"{where}: {exc}") from exc


def parse(doc: Any, source: str = "experiment") -> Experiment:
    """An :class:`Experiment` from the YAML document, checked: every cell's spec is valid before anything runs."""
    if not isinstance(doc, dict):
        raise SuiteError(f"{source}: expected a mapping with name, models, tasks, modes")
    doc = dict(doc)
    for key in ("name", "models", "tasks"):
        if not doc.get(key):
            raise SuiteError(f"{source}: missing {key!r}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", str(doc["name"])):
        raise SuiteError(f"{source}: name {doc['name']!r}: use letters, digits, '.', '_' and '-' (a directory name)")
    models = []
    for i, m in enumerate(doc.pop("models")):
        where = f"{source}: models[{i}]"
        m = dict(m) if isinstance(m, dict) else m
        if isinstance(m, dict) and m.get("finetune") is not None:
            m["finetune"] = _build(FinetuneEntry, m["finetune"], f"{where}.finetune")
        models.append(_build(ModelEntry, m, where))
    names = [m.name for m in models]
    if len(set(names)) != len(names) or any(not re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names):
        raise SuiteError(f"{source}: model names must be distinct directory names, got {names}")
    for i, m in enumerate(models):
        _check_export(m, models[:i], f"{source}: models[{i}]")
    tasks = [_build(TaskEntry, t if isinstance(t, dict) else {"task": t}, f"{source}: tasks[{i}]")
             for i, t in enumerate(doc.pop("tasks"))]  # fmt: skip
    for key, kind in (("modes", str), ("seeds", int)):
        if key in doc:
            doc[key] = tuple(doc[key] if isinstance(doc[key], list) else [doc[key]])
            if not doc[key] or any(not isinstance(v, kind) or isinstance(v, bool) for v in doc[key]):
                raise SuiteError(f"{source}: {key} must be a list of {kind.__name__}s, got {doc[key]}")
    exp = _build(Experiment, {**doc, "models": tuple(models), "tasks": tuple(tasks)}, source)
    for cell in exp.cells():  # a bad task, mode, debias or sample size fails here, before a model loads
        try:
            cell.spec(exp, cell.model.model, cell.model.adapter)
        except BenchError as exc:
            raise SuiteError(f"{source}: cell {cell.name}: {exc}") from exc
    return exp


EXPORTS = ("merged", "f16", "q8_0", "q4_k_m")


def _check_export(m: ModelEntry, earlier: Sequence[ModelEntry], where: str) -> None:
    """An export entry names an earlier fine-tuned entry and a format, and nothing else to load."""
    if (m.export_of is None) != (m.export is None):
        raise SuiteError(f"{where}: export_of and export go together (export_of: NAME, export: {'|'.join(EXPORTS)})")
    if m.export_of is None:
        return
    if m.export not in EXPORTS:
        raise SuiteError(f"{where}: export {m.export!r}: use one of {', '.join(EXPORTS)}")
    if not any(e.name == m.export_of and e.finetune for e in earlier):
        raise SuiteError(f"{where}: export_of {m.export_of!r} must name an earlier model with a finetune block")
    if m.finetune or m.adapter or m.model != "default":
        raise SuiteError(f"{where}: an exported model takes no model, adapter or finetune of its own")


def load_experiment(path: Path | str, *, data: str | None = None, out: str | None = None) -> Experiment:
    """Read an experiment file; ``data`` and ``out`` override its own."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"no experiment file at {path}: pass a YAML file such as experiments/original_table.yaml")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path} is not valid YAML: {exc}") from exc
    if isinstance(doc, dict):
        doc = {**doc, **({"data": str(data)} if data else {}), **({"out": str(out)} if out else {})}
    return parse(doc, str(path))


# ---- running ----------------------------------------------------------------------------------------------

Loader = Callable[[ModelEntry, "str | None", "int | None"], "Model"]  # (entry, artifact, threads) -> model
Trainer = Callable[[ModelEntry, Path, Experiment, bool], Path]  # (entry, run dir, experiment, progress) -> run dir
Exporter = Callable[[Path, str], Path]  # (training run dir, merged | GGUF type) -> the exported model's path


def load(entry: ModelEntry, artifact: str | None, threads: int | None) -> Model:
    """Load a model entry (the suite's default loader); what the suite made for it (adapter, export) comes first."""
    from tutor.models.registry import load_model

    options = {"n_threads": threads} if threads else {}
    if artifact is not None:
        return load_model(artifact, backend=entry.backend, **options)
    return load_model(entry.model, backend=entry.backend, adapter=entry.adapter, **options)


def export(run_dir: Path, kind: str) -> Path:
    """The run exported as ``kind`` (the suite's default exporter), made once: an existing export is reused."""
    from finetune import export as exporting

    if kind == "merged":
        out = run_dir / "merged"
        return out if (out / "config.json").is_file() else exporting.merge(run_dir, out)
    out = run_dir / "gguf" / f"model-{kind}.gguf"
    return out if out.is_file() else exporting.to_gguf(run_dir, kind, out=out)


def train(entry: ModelEntry, out: Path, exp: Experiment, progress: bool) -> Path:
    """Train the entry's recipe into ``out`` (the suite's default trainer); returns the run directory."""
    from finetune.config import load_recipe
    from finetune.train import train as train_recipe
    from finetune.train import with_overrides

    ft = entry.finetune
    assert ft is not None, "only entries with a finetune block are trained"
    if exp.threads:
        # torch keeps one thread count per process: without this, training takes every core whenever no
        # transformers model was loaded before it in this process (a resumed suite whose baseline is done).
        import torch

        torch.set_num_threads(exp.threads)
    overrides = [f"{k}={json.dumps(v)}" for k, v in ft.set.items()]
    recipe = load_recipe(ft.recipe, overrides)
    data = ft.data.replace("{data}", str(exp.data)) if ft.data else None
    recipe = with_overrides(recipe, data=data, max_steps=ft.max_steps)
    return train_recipe(recipe, out=out, progress=progress)


def _complete(run_dir: Path) -> bool:
    summary = run_dir / "summary.json"
    return summary.is_file() and json.loads(summary.read_text(encoding="utf-8")).get("complete") is True


def run_suite(
    exp: Experiment,
    *,
    loader: Loader | None = None,
    trainer: Trainer | None = None,
    exporter: Exporter | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every unfinished cell, then write table.md, plot.png and results.json; returns the results.

    ``loader``, ``trainer`` and ``exporter`` default to :func:`load`, :func:`train` and :func:`export` (tests pass
    fakes).
    """
    loader, trainer, exporter = loader or load, trainer or train, exporter or export
    out = exp.directory
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.json").write_text(json.dumps(asdict(exp), indent=2, default=str) + "\n", encoding="utf-8")
    by_name = {m.name: m for m in exp.models}

    def trained_run(entry: ModelEntry) -> Path:
        run_dir = out / "train" / entry.name
        if not (run_dir / "run.json").is_file():  # a finished training run is reused, never trained again
            _say(f"suite {exp.name}: training {entry.name} into {run_dir}", progress)
            trainer(entry, run_dir, exp, progress)
        return run_dir

    for entry in exp.models:
        todo = [c for c in exp.cells() if c.model is entry and not _complete(out / "runs" / c.name)]
        if not todo:
            continue
        artifact, adapter = None, entry.adapter
        if entry.finetune is not None:
            artifact = adapter = str(trained_run(entry) / "adapter")
        elif entry.export_of is not None:
            assert entry.export is not None, "checked by parse"
            artifact = str(exporter(trained_run(by_name[entry.export_of]), entry.export))
        model = loader(entry, artifact, exp.threads)
        try:
            for cell in todo:
                _say(f"suite {exp.name}: {cell.name}", progress)
                run(model, cell.spec(exp, artifact or entry.model, adapter), progress=progress)
        finally:
            model.close()
    return write_report(exp)


def _say(text: str, enabled: bool) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)


# ---- the report ------------------------------------------------------------------------------------------


def write_report(exp: Experiment) -> dict[str, Any]:
    """table.md, plot.png and results.json from the cells' run directories (unfinished cells marked partial)."""
    out = exp.directory
    trained = {m.name: out / "train" / m.name for m in exp.models if m.finetune}
    cells = [c for c in exp.cells() if (out / "runs" / c.name / "config.json").is_file()]
    dirs = [out / "runs" / c.name for c in cells]
    seeds = len(exp.seeds) > 1  # one row per seed, else the seeds' runs would share a row and hide each other
    labels = {str(out / "runs" / c.name): c.model.name + (f" seed {c.seed}" if seeds else "") for c in cells}
    comparisons = compare_models(exp)
    table = compare_table(dirs, labels) if dirs else "(no cell has run yet)"
    text = f"# {exp.name}\n\n{table}\n\n{comparison_table(comparisons)}\n"
    (out / "table.md").write_text(text, encoding="utf-8")
    if dirs:
        plot(dirs, out / "plot.png", labels)
    results = {
        "experiment": asdict(exp),
        "cells": [_cell_record(c, out / "runs" / c.name) for c in cells],
        "training": {
            name: json.loads((d / "run.json").read_text(encoding="utf-8"))
            for name, d in trained.items()
            if (d / "run.json").is_file()
        },
        "comparisons": comparisons,
        "table": text,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return results


def _cell_record(cell: Cell, run_dir: Path) -> dict[str, Any]:
    harness = run_dir / "results.json"
    return {
        "cell": cell.name,
        "model": cell.model.name,
        "task": cell.task.task,
        "mode": cell.mode,
        "seed": cell.seed,
        "run_dir": str(run_dir),
        "summary": load_summary(run_dir),
        "lm_eval": json.loads(harness.read_text(encoding="utf-8")) if harness.is_file() else None,
    }


def compare_models(exp: Experiment) -> list[dict[str, Any]]:
    """Each model against the first, cell by cell, paired on the questions both answered."""
    out, base = exp.directory / "runs", exp.models[0]
    found = []
    for cell in exp.cells():
        if cell.model is base:
            continue
        ref = replace(cell, model=base)
        a, b = out / ref.name / "predictions.jsonl", out / cell.name / "predictions.jsonl"
        if a.is_file() and b.is_file():
            scoring = json.loads((out / cell.name / "config.json").read_text(encoding="utf-8")).get("scoring")
            stats = paired(read_predictions(a), read_predictions(b), binary=scoring != "mass")
            found.append({"task": cell.task.task, "mode": cell.mode, "seed": cell.seed, "baseline": base.name,
                          "model": cell.model.name, **stats})  # fmt: skip
    return found


def paired(base: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]], binary: bool) -> dict[str, Any]:
    """The difference in mean score (other - base) on the common questions, its 95% interval and a p-value.

    Right/wrong scores: McNemar's exact test (a two-sided binomial test on the questions only one got right).
    Probability mass (MC2): a paired normal test on the per-question differences.
    """
    by_id = {r["id"]: float(r["score"]) for r in base}
    pairs = [(by_id[r["id"]], float(r["score"])) for r in other if r["id"] in by_id]
    n = len(pairs)
    diffs = [y - x for x, y in pairs]
    mean = sum(diffs) / n if n else 0.0
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n) if n else 0.0
    result: dict[str, Any] = {"n": n, "diff": mean, "ci95": [mean - half, mean + half]}
    if binary:
        gained = sum(1 for x, y in pairs if y > x)
        lost = sum(1 for x, y in pairs if x > y)
        result.update(test="McNemar exact", gained=gained, lost=lost, p=mcnemar(gained, lost))
    else:
        z = mean / (sd / math.sqrt(n)) if sd > 0 else 0.0
        result.update(test="paired normal", p=math.erfc(abs(z) / math.sqrt(2)) if sd > 0 else 1.0)
    return result


def mcnemar(b: int, c: int) -> float:
    """McNemar's exact two-sided p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def comparison_table(rows: Sequence[dict[str, Any]], alpha: float = 0.05) -> str:
    """Markdown: each model against the baseline per task and mode, with the difference's interval and p."""
    if not rows:
        return "(one model only, or no cell pair has run: nothing to compare)"
    lines = [
        "| task | mode | model vs baseline | n | difference (points) [95% CI] | test | p | significant at 0.05 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["ci95"]
        detail = f" (+{r['gained']} / -{r['lost']})" if "gained" in r else ""
        lines.append(
            f"| {r['task']} | {r['mode']} | {r['model']} vs {r['baseline']} | {r['n']} "
            f"| {100 * r['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | {r['test']}{detail} | {r['p']:.3g} "
            f"| {'yes' if r['p'] < alpha else 'no'} |"
        )
    return "\n".join(lines)


__all__ = [
    "Cell",
    "Experiment",
    "FinetuneEntry",
    "ModelEntry",
    "SuiteError",
    "TaskEntry",
    "comparison_table",
    "load_experiment",
    "mcnemar",
    "paired",
    "parse",
    "run_suite",
    "write_report",
]
