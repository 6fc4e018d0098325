"""Fine-tuning: a LoRA/QLoRA recipe in one YAML file, trained on trl or unsloth, exported offline to GGUF.

``ta finetune RECIPE.yaml`` writes a run directory (``adapter/``, ``recipe.yaml``, ``metrics.jsonl``,
``loss.png``, ``README.md``) that ``tutor.models.load_model(RUN_DIR / "adapter")`` serves;
``ta export RUN_DIR --merged DIR`` / ``--gguf q4_k_m`` turn it into a checkpoint or a GGUF file.
Heavy libraries (torch, trl, peft, unsloth) are imported only where a run needs them.
"""

from finetune.config import Recipe, load_recipe

__all__ = ["Recipe", "load_recipe"]
