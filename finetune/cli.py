"""``ta finetune RECIPE.yaml`` and ``ta export RUN_DIR``: the fine-tuning package's subcommands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tutor.cli import CLIError


def register(sub: Any) -> None:
    """Add ``finetune`` and ``export`` to ``ta``."""
    p = sub.add_parser("finetune", help="train a LoRA/QLoRA adapter from a recipe YAML file")
    p.add_argument("recipe", type=Path, help="a recipe, e.g. finetune/configs/smollm2-135m-lora-cpu.yaml")
    p.add_argument("--data", metavar="PATH", help="training data: a .jsonl/.json/.parquet file or a hub dataset id")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a key")
    p.add_argument("--out", type=Path, metavar="DIR", help="the run directory (default: output_dir/run_name)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last checkpoint (see save_steps)"
    )
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("export", help="merge a run's adapter into a 16-bit checkpoint and/or a GGUF file")
    p.add_argument("run", type=Path, nargs="?", metavar="RUN_DIR", help="a run directory (or its adapter/ directory)")
    p.add_argument("--merged", type=Path, metavar="DIR", help="write the merged 16-bit checkpoint here")
    p.add_argument("--gguf", choices=("f16", "q8_0", "q4_k_m"), help="write a GGUF file of this type")
    p.add_argument("--gguf-out", type=Path, metavar="FILE", help="GGUF path (default: RUN_DIR/gguf/model-TYPE.gguf)")
    p.add_argument("--dtype", choices=("auto", "float16", "bfloat16"), default="auto", help="merged weights dtype")
    p.add_argument(
        "--base", type=Path, metavar="DIR", help="16-bit base checkpoint (default: the one the adapter names)"
    )
    p.add_argument("--prepare", action="store_true", help="fetch llama.cpp's converter once, so exports run offline")
    p.set_defaults(func=cmd_export)


def cmd_finetune(args: argparse.Namespace) -> int:
    """Load the recipe, apply the flags, train, print the run directory."""
    from finetune.config import load_recipe
    from finetune.train import train, with_overrides

    recipe = load_recipe(args.recipe, args.overrides)
    recipe = with_overrides(recipe, data=args.data, max_steps=args.max_steps, resume=args.resume or None)
    name = f"{args.recipe.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = args.out
    if recipe.resume and out is None and not recipe.run_name:
        out = latest_unfinished(Path(recipe.output_dir), args.recipe.stem)
    try:
        run_dir = train(recipe, name=name, out=out, progress=not args.quiet)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from exc
    except KeyboardInterrupt:
        final = out or Path(recipe.output_dir) / (recipe.run_name or name)
        print(
            f"interrupted: the unfinished run is {final}.partial; continue it with "
            f"`ta finetune {args.recipe} --out {final} --resume` (checkpoints every save_steps={recipe.save_steps})",
            file=sys.stderr,
        )
        return 130
    summary = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    print(
        f"eval loss {summary['eval_loss_before']} -> {summary['eval_loss_after']}, {summary['seconds_per_step']} s/step"
    )
    print(run_dir)
    return 0


def latest_unfinished(output_dir: Path, stem: str) -> Path:
    """The run directory of the newest unfinished run of a recipe (its ``.partial`` twin), to resume."""
    partials = sorted(output_dir.glob(f"{stem}-*.partial"), key=lambda p: p.stat().st_mtime)
    if not partials:
        raise CLIError(f"nothing to resume: no unfinished {stem} run under {output_dir}/ (pass --out RUN_DIR)")
    return partials[-1].with_name(partials[-1].name.removesuffix(".partial"))


def cmd_export(args: argparse.Namespace) -> int:
    """Write what was asked: a merged checkpoint, a GGUF file, or both."""
    from finetune import export

    if args.prepare:
        print(export.converter())
        if not args.run:
            return 0
    if not args.run:
        raise CLIError("name the run to export: ta export RUN_DIR --gguf q4_k_m")
    if not args.merged and not args.gguf:
        raise CLIError("say what to export: --merged DIR and/or --gguf f16|q8_0|q4_k_m")
    merged = None
    if args.merged:
        merged = export.merge(args.run, args.merged, dtype=args.dtype, base=args.base)
        print(merged)
    if args.gguf:
        out = export.to_gguf(args.run, args.gguf, out=args.gguf_out, merged=merged, dtype=args.dtype, base=args.base)
        print(out)
    rss = export.peak_rss_mb()
    print(f"peak RSS: {rss['self']} MiB this process (merge), {rss['children']} MiB the converter", file=sys.stderr)
    return 0
