"""One rule for the tokens a prompt starts with, on both backends, on a tiny Llama-3-style GGUF written here.

The GGUF (random weights, byte-level BPE, ``add_bos_token`` true, a chat template that renders
``bos_token`` itself, as Llama 3's does) is loaded by llama.cpp directly and by transformers through
its converted checkpoint. Before the rule, llama.cpp fed such a chat two BOS tokens and transformers
scored raw text with none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tutor.models import load_model

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "a n"]
CHAT = [{"role": "user", "content": "the cat"}]


def _byte_level_alphabet() -> list[str]:
    """GPT-2's printable stand-in for each of the 256 bytes, in byte order (byte-level BPE's base vocabulary)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    chars = dict(zip(printable, printable, strict=True)) | {b: 256 + i for i, b in enumerate(others)}
    return [chr(chars[b]) for b in range(256)]


def write_tiny_llama3_gguf(path: Path, n_embd: int = 32, n_ff: int = 64, n_head: int = 4) -> dict[str, int]:
    """A one-layer llama GGUF with random f32 weights; returns the special tokens' ids."""
    import gguf

    tokens = _byte_level_alphabet() + [m.replace(" ", "") for m in MERGES] + SPECIALS
    types = [gguf.TokenType.NORMAL] * (len(tokens) - len(SPECIALS)) + [gguf.TokenType.CONTROL] * len(SPECIALS)
    ids = {t: tokens.index(t) for t in SPECIALS}
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama3")
    writer.add_block_count(1)
    writer.add_context_length(256)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(ids["<|begin_of_text|>"])
    writer.add_eos_token_id(ids["<|eot_id|>"])
    writer.add_add_bos_token(True)
    writer.add_chat_template(LLAMA3_TEMPLATE)
    rng = np.random.default_rng(0)

    def weight(*shape: int, scale: float = 1.0) -> np.ndarray:
        # Large enough that the context (and so a missing BOS) moves the scores well past float noise.
        return (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(len(tokens), n_embd, scale=4))
    for norm in ("blk.0.attn_norm", "blk.0.ffn_norm", "output_norm"):
        writer.add_tensor(f"{norm}.weight", np.ones(n_embd, np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"blk.0.{name}.weight", weight(n_embd, n_embd, scale=2))
    writer.add_tensor("blk.0.ffn_gate.weight", weight(n_ff, n_embd))
    writer.add_tensor("blk.0.ffn_up.weight", weight(n_ff, n_embd))
    writer.add_tensor("blk.0.ffn_down.weight", weight(n_embd, n_ff))
    writer.add_tensor("output.weight", weight(len(tokens), n_embd, scale=8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return ids


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """``(llama.cpp model, transformers model, BOS id)`` over the same tiny GGUF."""
    root = tmp_path_factory.mktemp("tiny")
    path = root / "tiny-llama3.gguf"
    bos = write_tiny_llama3_gguf(path)["<|begin_of_text|>"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUTOR_CACHE", str(root / "cache"))  # the converted checkpoint lands here, not in the shared cache
        llama = load_model(path, self_check=False)
        hf = load_model(path, backend="transformers", self_check=False)
    yield llama, hf, bos
    llama.close()


def test_a_llama3_chat_is_fed_exactly_one_bos_on_both_backends(tiny, monkeypatch) -> None:
    llama, hf, bos = tiny
    assert llama.render(CHAT).startswith("<|begin_of_text|>") and hf.render(CHAT) == llama.render(CHAT)
    assert llama.special_tokens().add_bos and hf.special_tokens().add_bos, "the GGUF asks for BOS"

    llama.generate(CHAT, max_tokens=1)
    fed_llama = list(llama._cached)  # one new token is picked from the prompt's pass: the cache holds the prompt
    fed_hf: list[int] = []
    generate = hf.hf.generate

    def recording(**kwargs):
        fed_hf.extend(kwargs["input_ids"][0].tolist())
        return generate(**kwargs)

    monkeypatch.setattr(hf.hf, "generate", recording)
    hf.generate(CHAT, max_tokens=1)
    assert fed_llama == fed_hf == llama.prompt_tokens(llama.render(CHAT))
    assert fed_llama[0] == bos and fed_llama.count(bos) == 1


def test_raw_text_scoring_starts_with_one_bos_and_the_backends_agree(tiny) -> None:
    llama, hf, bos = tiny
    assert llama.prompt_tokens("the cat") == hf.prompt_tokens("the cat") == [bos, *llama.tokenize("the cat")]
    assert llama.start([]) == hf.start([]) == [bos], "an empty context is BOS on both"
    pairs = [("the cat", " in the hat"), ("an", " the"), ("", "the")]
    # Without BOS on one side the first pair moves by about 2.3 nats; kernels differ by about 0.02.
    assert llama.loglikelihood(pairs) == pytest.approx(hf.loglikelihood(pairs), abs=0.1)
    raw = [m.choose(["the cat"], ["a", "b"], chat=False)[0].logprobs for m in (llama, hf)]
    assert raw[0] == pytest.approx(raw[1], abs=0.05)
    chat = [m.choose([CHAT], ["a", "b"])[0].logprobs for m in (llama, hf)]
    assert chat[0] == pytest.approx(chat[1], abs=0.05)
