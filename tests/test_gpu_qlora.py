"""The QLoRA path on a CUDA GPU: a 4-bit NF4 load, one training step of each kind, the merge (``-m gpu``).

The model is a tiny Llama written here (2 layers, random weights, a word-level tokenizer with a ChatML template), so
the tests need no download and no weights: what they check is the machinery the Llama-3.2-3B recipe runs on (the
recipe's own NF4 settings, LoRA on every projection, 8-bit AdamW), not what a model learns.

- ``test_recipe_loads_the_base_in_4bit``: finetune.train.load_model with the QLoRA recipe: bitsandbytes Linear4bit
  NF4 layers with double quantization, LoRA adapters on every projection, logits close to the 16-bit model's.
- ``test_one_qlora_step_moves_only_the_adapter``: one optimizer step (bitsandbytes' 8-bit AdamW, the recipe's
  ``adamw_8bit``) on the 4-bit model: the loss is finite, LoRA weights move, the 4-bit base does not.
- ``test_streamed_merge_of_a_qlora_adapter_matches_peft``: the adapter trained on the 4-bit base, merged into the
  16-bit original by finetune.export.merge, gives peft's merge_and_unload logits.
- ``test_one_trl_step`` and ``test_one_unsloth_step``: ``ta finetune`` for one step on each path (trl's SFTTrainer,
  whose CUDA loss is a fused Triton kernel; unsloth's FastLanguageModel), each skipped with the reason where its
  package is not installed.

Each test skips with the reason where there is no CUDA device or no bitsandbytes (``TA_QLORA_DEVICE=cpu`` runs them on
bitsandbytes' CPU backend instead: a dry run of the tests' own logic, not a test of the GPU path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "finetune" / "configs" / "llama-3.2-3b-qlora.yaml"
WORDS = (
    "what is a the of to and in model loss learning rate gradient descent overfitting data training test set "
    "neural network layer weights update step small large too it when on how why does do name three colors "
    "red blue yellow primary explain one sentence regularization dropout epoch precision recall k means"
).split()
CHATML = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


@pytest.fixture(scope="module")
def cuda():
    """The CUDA device, or a skip that says why not."""
    torch = pytest.importorskip("torch", reason="the GPU tier needs torch")
    if os.environ.get("TA_QLORA_DEVICE") == "cpu":  # a dry run of the tests' own logic on bitsandbytes' CPU backend
        pytest.importorskip("bitsandbytes", reason="the QLoRA path needs bitsandbytes: pip install -e '.[gpu]'")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the QLoRA path needs an NVIDIA GPU (run -m gpu on one)")
    pytest.importorskip("bitsandbytes", reason="the QLoRA path needs bitsandbytes: pip install -e '.[gpu]'")
    return torch.device("cuda")


@pytest.fixture(scope="module")
def tiny_base(cuda, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with random weights and a word-level ChatML tokenizer, saved as a 16-bit checkpoint."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    specials = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
    vocab = {token: i for i, token in enumerate([*specials, "system", "user", "assistant", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["<|im_end|>"],
        bos_token_id=vocab["<|im_start|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path)  # safetensors, what the merge reads
    return path


@pytest.fixture(scope="module")
def recipe():
    from finetune.config import load_recipe

    return load_recipe(RECIPE, ["path=trl"])  # the recipe's path is unsloth; trl's loads through peft + bitsandbytes


def _batch(tiny_base: Path, device) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "what is overfitting"}, {"role": "assistant", "content": "the model"}],
        tokenize=False,
    )
    ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
    return {"input_ids": ids, "labels": ids.clone()}


@pytest.fixture(scope="module")
def qlora(tiny_base: Path, recipe, cuda):
    """The tiny base through the recipe's QLoRA load (4-bit NF4 + LoRA), on the GPU."""
    from finetune.train import load_model

    return load_model(recipe, str(tiny_base))


def test_recipe_loads_the_base_in_4bit(qlora, tiny_base: Path, recipe, cuda) -> None:
    import bitsandbytes as bnb
    import torch
    from transformers import AutoModelForCausalLM

    assert recipe.load_in_4bit and recipe.path == "trl"
    layers = [m for m in qlora.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 2 * 7, "every attention and MLP projection of both layers is 4-bit"
    state = layers[0].weight.quant_state
    assert state.quant_type == "nf4" and state.nested, "NF4 with double quantization, as the recipe says"
    adapted = {name.split(".")[-1] for name, module in qlora.named_modules() if hasattr(module, "lora_A")}
    assert adapted == set(recipe.target_modules), adapted
    batch = _batch(tiny_base, cuda)
    full = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.bfloat16).to(cuda)
    with torch.inference_mode():
        four = qlora(input_ids=batch["input_ids"]).logits.float()
        sixteen = full(input_ids=batch["input_ids"]).logits.float()
    assert torch.isfinite(four).all()
    # NF4 rounds each weight: the logits move, but stay the same function (cosine near 1, not a random one).
    cosine = torch.nn.functional.cosine_similarity(four.flatten(), sixteen.flatten(), dim=0)
    assert cosine > 0.9, float(cosine)


@pytest.fixture(scope="module")
def stepped(qlora, tiny_base: Path, cuda, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One 8-bit AdamW step on the 4-bit model; the adapter it leaves, saved."""
    import bitsandbytes as bnb

    trainable = {n: p.detach().clone() for n, p in qlora.named_parameters() if p.requires_grad}
    frozen = _frozen(qlora)
    qlora.train()
    optimizer = bnb.optim.AdamW8bit([p for p in qlora.parameters() if p.requires_grad], lr=1e-2)
    loss = qlora(**_batch(tiny_base, cuda)).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    qlora.eval()
    adapter = tmp_path_factory.mktemp("qlora-run") / "adapter"
    qlora.save_pretrained(adapter)
    return {"loss": loss.item(), "trainable": trainable, "frozen": frozen, "after": _frozen(qlora), "adapter": adapter}


def _frozen(model) -> dict:
    """The frozen weights; a 4-bit layer as its output on a fixed input (bitsandbytes may repack its bytes)."""
    import bitsandbytes as bnb
    import torch

    values = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, bnb.nn.Linear4bit):
                probe = torch.linspace(-1, 1, module.in_features, device=module.weight.device).to(torch.bfloat16)
                values[name] = module(probe[None]).clone()
    four_bit = {f"{name}.weight" for name in values}
    for name, param in model.named_parameters():
        if not param.requires_grad and name not in four_bit:
            values[name] = param.detach().clone()
    return values


def test_one_qlora_step_moves_only_the_adapter(qlora, stepped: dict) -> None:
    import math

    import torch

    assert math.isfinite(stepped["loss"]) and stepped["loss"] > 0
    after = dict(qlora.named_parameters())
    moved = [n for n, before in stepped["trainable"].items() if not after[n].detach().equal(before)]
    assert moved and all("lora_" in n for n in stepped["trainable"]), "only LoRA weights train"
    assert any("lora_B" in n for n in moved), "the step reached the B matrices (zero at start)"
    assert any(".layers.1.mlp.down_proj.base_layer" in n for n in stepped["frozen"]), "4-bit layers are compared"
    # A 4-bit layer's output is compared with a tolerance: its kernel may differ once bitsandbytes has repacked it.
    changed = [
        n
        for n, before in stepped["frozen"].items()
        if not torch.allclose(stepped["after"][n].float(), before.float(), rtol=0.02, atol=0.02)
    ]
    assert not changed, f"the 4-bit base is frozen: {changed}"


def test_streamed_merge_of_a_qlora_adapter_matches_peft(stepped: dict, tiny_base: Path, cuda, tmp_path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from finetune.export import merge

    config = json.loads((stepped["adapter"] / "adapter_config.json").read_text())
    assert config["r"] == 16 and set(config["target_modules"]) >= {"q_proj", "down_proj"}
    merged = merge(stepped["adapter"].parent, tmp_path / "merged", base=tiny_base)  # the 16-bit original
    batch = _batch(tiny_base, cuda)
    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    reference = PeftModel.from_pretrained(base, str(stepped["adapter"])).merge_and_unload().to(cuda)
    ours = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).to(cuda)
    with torch.inference_mode():
        want, got = reference(input_ids=batch["input_ids"]).logits, ours(input_ids=batch["input_ids"]).logits
    assert torch.allclose(want, got, atol=0.05, rtol=0), float((want - got).abs().max())  # 16-bit storage


def _finetune(tiny_base: Path, tmp_path: Path, path: str) -> dict:
    """``ta finetune`` with the QLoRA recipe on the tiny base, one step, in a child process; its run.json."""
    out = tmp_path / "run"
    sets = [f"model={tiny_base}", f"path={path}", "max_seq_len=64", "eval_size=2", "batch_size=2", "grad_accum=1"]
    data = ROOT / "tests" / "data" / "instruct_tiny.jsonl"
    command = [sys.executable, "-m", "tutor.cli", "finetune", str(RECIPE), "--data", str(data), "--out", str(out)]
    command += ["--max-steps", "1", "--quiet", *[a for kv in sets for a in ("--set", kv)]]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "run.json").read_text())


def test_one_trl_step(cuda, tiny_base: Path, tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="the trl step needs trl (and datasets): pip install -e '.[gpu]'")
    pytest.importorskip("datasets", reason="the trl step needs datasets: pip install -e '.[gpu]'")
    summary = _finetune(tiny_base, tmp_path, "trl")
    assert summary["path"] == "trl" and summary["steps"] == 1 and summary["eval_loss_after"] > 0


def test_one_unsloth_step(cuda, tiny_base: Path, tmp_path: Path) -> None:
    pytest.importorskip("unsloth", reason="the unsloth step needs unsloth: pip install -e '.[gpu]'")
    summary = _finetune(tiny_base, tmp_path, "unsloth")
    assert summary["path"] == "unsloth" and summary["steps"] == 1 and summary["eval_loss_after"] > 0
