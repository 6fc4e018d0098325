"""What a run leaves for people: ``metrics.jsonl`` as it trains, a loss-curve PNG and a model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finetune.config import Recipe


def metrics_log(path: Path) -> Any:
    """A trainer callback appending every logged dict (loss, eval_loss, lr) to a JSONL file, one per line.

    Defined here, not at module level, so importing this module does not import transformers.
    """
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            """Append one record per logging event."""
            record = {"step": state.global_step, "epoch": state.epoch, **(logs or {})}
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    return MetricsLog()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (empty when there is none)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_losses(records: list[dict[str, Any]], target: Path) -> None:
    """Training loss per step and eval loss where measured, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o--", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def model_card(recipe: Recipe, summary: dict[str, Any]) -> str:
    """A README.md that says what was trained on what, how, and how to use it."""
    counts = summary["counts"]
    quant = "4-bit nf4 (QLoRA)" if recipe.load_in_4bit else recipe.dtype
    before, after = summary.get("eval_loss_before"), summary.get("eval_loss_after")
    return f"""# LoRA adapter for {summary["base"]}

Trained with `finetune` on the **{recipe.path}** path; the exact recipe is `recipe.yaml` beside this file.

| | |
|---|---|
| base model | `{summary["base"]}` ({quant}) |
| data | `{recipe.data}`: {counts["rows"]} rows, {counts["conversations"]} distinct usable conversations, \
{counts["too_long"]} dropped over {recipe.max_seq_len} tokens; {counts["train"]} train / {counts["eval"]} eval |
| LoRA | r={recipe.lora_r}, alpha={recipe.lora_alpha}, dropout={recipe.lora_dropout}, \
on {", ".join(recipe.target_modules)} |
| optimisation | lr {recipe.learning_rate} ({recipe.lr_scheduler}), batch {recipe.batch_size} x {recipe.grad_accum} \
accumulation, {recipe.optim}, seed {recipe.seed} |
| steps | {summary["steps"]} in {summary["train_seconds"]} s ({summary["seconds_per_step"]} s/step) |
| eval loss | {_loss(before)} before, {_loss(after)} after (assistant tokens only) |

The loss counts only assistant tokens (end-of-turn included). `metrics.jsonl` holds every logged
value; `loss.png` plots them.

## Use it

```bash
ta ask --model {{RUN_DIR}}/adapter "What is overfitting?"
ta export {{RUN_DIR}} --merged {{RUN_DIR}}/merged      # a merged 16-bit checkpoint
ta export {{RUN_DIR}} --gguf q4_k_m                    # a GGUF file for llama.cpp
```
"""


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
