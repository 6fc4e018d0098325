"""A run's summary in lm-evaluation-harness's results-JSON shape, for the dashboards and scripts that read it.

``results.json`` has the keys ``lm_eval.simple_evaluate`` returns (``results``, ``group_subtasks``, ``configs``,
``versions``, ``n-shot``, ``higher_is_better``, ``n-samples``, ``config``, ``date``...), with metric keys
``METRIC,FILTER``: ``acc,none``, ``acc_stderr,none``, and ``acc_norm,none`` for ``loglik``. The standard error is
the harness's own for a mean (sample standard deviation over the square root of n), so numbers read the same.

The task keeps its harness name (``arc_challenge``, ``truthfulqa_mc1``...) and the alias says how it was scored
(``arc_challenge (letter)``): only ``loglik`` is the harness's method; ``configs[TASK]["metadata"]`` holds the
mode, debiasing, data file, seed and sample, and the undebiased accuracy where there is one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

FILTER = "none"  # the harness names a metric's filter after it; we apply none


def mean_stderr(values: Sequence[float]) -> float | str:
    """The harness's standard error of a mean: sample standard deviation / sqrt(n) ("N/A" below two values)."""
    n = len(values)
    if n < 2:
        return "N/A"
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def _metric(out: dict[str, Any], name: str, values: Sequence[float]) -> None:
    out[f"{name},{FILTER}"] = sum(values) / len(values) if values else 0.0
    out[f"{name}_stderr,{FILTER}"] = mean_stderr(values)


def harness_results(
    summary: dict[str, Any], config: dict[str, Any], rows: Sequence[dict[str, Any]], n_original: int | None = None
) -> dict[str, Any]:
    """The lm-evaluation-harness results dictionary for one run.

    Args:
        summary: the run's summary (``benchmarks.run.summarize``).
        config: the run's config.json.
        rows: the predictions, one per question.
        n_original: how many questions the whole data file holds (a ``--limit`` or ``--sample`` took fewer).
    """
    task, mode, debias = config["task"], config["mode"], config.get("debias")
    metrics: dict[str, Any] = {"alias": f"{task} ({mode}{'+' + debias if debias else ''})"}
    _metric(metrics, "acc", [float(r["score"]) for r in rows])
    higher = {"acc": True}
    if "accuracy_norm" in summary:
        _metric(metrics, "acc_norm", [float(bool(r["extra"].get("correct_norm"))) for r in rows])
        higher["acc_norm"] = True
    metadata = {
        "mode": mode,
        "debias": debias,
        "scoring": config.get("scoring"),
        "data": config.get("data"),
        "data_sha256": config.get("data_sha256"),
        "split": config.get("split"),
        "seed": config.get("seed"),
        "sample": config.get("sample"),
        "limit": config.get("limit"),
        "ci95": summary.get("ci95"),
        "parse_failures": summary.get("parse_failures"),
    }
    if "accuracy_raw" in summary:
        metadata["accuracy_raw"] = summary["accuracy_raw"]
    versions = config.get("versions") or {}
    return {
        "results": {task: metrics},
        "group_subtasks": {task: []},
        "configs": {
            task: {
                "task": task,
                "output_type": "multiple_choice",
                "num_fewshot": 0,
                "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in higher],
                "metadata": metadata,
            }
        },
        "versions": {task: 1.0},
        "n-shot": {task: 0},
        "higher_is_better": {task: higher},
        "n-samples": {task: {"original": n_original or len(rows), "effective": len(rows)}},
        "config": {
            "model": config.get("model_spec") or config.get("model"),
            "model_args": _model_args(config),
            "batch_size": config.get("batch_size"),
            "device": "cpu" if config.get("backend") == "llamacpp" else None,
            "limit": config.get("limit") or config.get("sample"),
            "bootstrap_iters": 0,
            "random_seed": config.get("seed"),
        },
        "date": time.time(),
        "model_source": f"ml-tutor:{config.get('backend')}",
        "model_name": config.get("model"),
        "model_name_sanitized": str(config.get("model")).replace("/", "__"),
        "transformers_version": versions.get("transformers"),
        "lm_eval_version": None,
        "tutor_version": versions.get("ml-tutor"),
        "total_evaluation_time_seconds": str(round(sum(float(r.get("seconds", 0.0)) for r in rows), 3)),
    }


def _model_args(config: dict[str, Any]) -> str:
    """The harness's comma-separated ``model_args`` string."""
    parts = [f"pretrained={config.get('model_spec') or config.get('model')}", f"backend={config.get('backend')}"]
    if config.get("adapter"):
        parts.append(f"peft={config['adapter']}")
    return ",".join(parts)


__all__ = ["harness_results", "mean_stderr"]
