"""Compare runs: the markdown table the original README had (model | ARC | TruthfulQA), and a chart.

One row per model (with its adapter and scoring mode), one column per task found among the runs (in the
registry's order, under each task's title), each cell the accuracy with its 95% interval; a parse-failure
column counts the answers no method could read. A run without a summary (interrupted) is shown from its
predictions and marked partial. :func:`list_runs` and :func:`compare_runs` offer the runs under one folder by
name only (what the web page's Results tab shows).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.run import RunError, read_predictions, summarize
from benchmarks.tasks import TASKS
from tutor.errors import InputError


def title(task: str) -> str:
    """The task's column title (a task this version does not know keeps its name)."""
    return TASKS[task].title if task in TASKS else task


def load_summary(run_dir: Path | str) -> dict[str, Any]:
    """The run's summary; recomputed from predictions (``complete: false``) when the run was interrupted."""
    run_dir = Path(run_dir)
    summary_path, config_path = run_dir / "summary.json", run_dir / "config.json"
    if summary_path.is_file():
        return _read_json(summary_path)
    if not config_path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no config.json): pass directories made by `ta bench run`")
    config = _read_json(config_path)
    rows = read_predictions(run_dir / "predictions.jsonl")
    summary = summarize(rows, config, int(config.get("n_questions") or 0))
    summary["complete"] = False  # no summary.json: whatever the count, the run did not finish
    return summary


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not JSON: leave {path.parent} out of the comparison") from exc


def _cell(s: dict[str, Any]) -> str:
    lo, hi = s["ci95"]
    cell = f"{100 * s['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] (n={s['n']})"
    if s.get("accuracy_norm") is not None:
        cell += f", norm {100 * s['accuracy_norm']:.1f}"
    return cell if s.get("complete") else cell + " *partial*"


def _row_key(s: dict[str, Any], label: str | None = None) -> str:
    name = label or s["model"] + (f" + {Path(s['adapter']).name}" if s.get("adapter") else "")
    return f"{name} ({s['mode']}{'+' + s['debias'] if s.get('debias') else ''})"


Labels = dict[str, str] | None  # run directory (as a string) -> the model's name in the table; None: its own name


def collect(
    run_dirs: Sequence[Path | str], labels: Labels = None
) -> tuple[dict[str, dict[str, dict[str, Any]]], list[str]]:
    """Summaries grouped as {row: {task: summary}}, and the tasks present, in table order."""
    if not run_dirs:
        raise RunError("no run directories given: ta bench compare RUN_DIR [RUN_DIR ...]")
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for run_dir in run_dirs:
        s = load_summary(run_dir)
        rows.setdefault(_row_key(s, (labels or {}).get(str(run_dir))), {})[s["task"]] = s
    present = {t for cells in rows.values() for t in cells}
    return rows, [t for t in TASKS if t in present] + sorted(present - set(TASKS))


def compare_table(run_dirs: Sequence[Path | str], labels: Labels = None) -> str:
    """A markdown table: model | one column per task (accuracy % [95% interval]) | parse failures."""
    rows, tasks = collect(run_dirs, labels)
    header = ["model", *(title(t) for t in tasks), "parse failures"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for key, cells in rows.items():
        failures = sum(s["parse_failures"] for s in cells.values())
        answered = sum(s["n"] for s in cells.values())
        values = [_cell(cells[t]) if t in cells else "-" for t in tasks]
        lines.append("| " + " | ".join([key, *values, f"{failures}/{answered}"]) + " |")
    return "\n".join(lines)


def plot(run_dirs: Sequence[Path | str], png_path: Path | str, labels: Labels = None) -> Path:
    """A grouped bar chart of the table (accuracy with 95% interval error bars), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in tests
    import matplotlib.pyplot as plt

    rows, tasks = collect(run_dirs, labels)
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(tasks)), 4))
    for k, (key, cells) in enumerate(rows.items()):
        xs = [i + k * width for i, t in enumerate(tasks) if t in cells]
        acc = [100 * cells[t]["accuracy"] for t in tasks if t in cells]
        err = [
            [100 * (cells[t]["accuracy"] - cells[t]["ci95"][0]) for t in tasks if t in cells],
            [100 * (cells[t]["ci95"][1] - cells[t]["accuracy"]) for t in tasks if t in cells],
        ]
        ax.bar(xs, acc, width, yerr=err, capsize=3, label=key)
    ax.set_xticks([i + width * (len(rows) - 1) / 2 for i in range(len(tasks))], [title(t) for t in tasks])
    ax.set_ylabel("accuracy (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path


def list_runs(root: Path) -> list[str]:
    """Names of the run directories under ``root`` (those with a config or summary), newest first."""
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if (p / "summary.json").is_file() or (p / "config.json").is_file()]
    return [p.name for p in sorted(dirs, key=lambda p: p.stat().st_mtime, reverse=True)]


def resolve_runs(names: Sequence[str] | None, root: Path) -> list[Path]:
    """The chosen run names as directories, accepting only names listed under ``root`` (never a path)."""
    known = set(list_runs(root))
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise InputError(f"no run named {', '.join(unknown)} under {root}: press Refresh and pick from the list")
    return [root / n for n in names or []]


def compare_runs(names: Sequence[str] | None, root: Path, folder: Path) -> tuple[str, str]:
    """The table (markdown) and chart (a PNG in a new directory under ``folder``) of the runs named under ``root``."""
    dirs = resolve_runs(names, root)
    if not dirs:
        raise InputError("pick one or more runs first")
    folder.mkdir(parents=True, exist_ok=True)
    png = Path(tempfile.mkdtemp(prefix="chart-", dir=folder)) / "compare.png"  # one per request: no overwrites
    try:
        return compare_table(dirs), str(plot(dirs, png))
    except (ValueError, RuntimeError, OSError, KeyError) as exc:  # a broken or foreign directory (RunError too)
        raise RunError(f"cannot compare these runs: {exc}") from exc
