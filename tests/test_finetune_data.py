"""Data: three formats normalise to chat messages; filters; the label mask keeps only assistant tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune import data

SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello!"},
    ],
    "source": "x",
    "score": 4.5,
}
MESSAGES = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
ALPACA = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from tutor.models import embedded

    return AutoTokenizer.from_pretrained(str(embedded.hf_checkpoint()))


def test_three_formats_normalise_to_messages():
    assert data.to_messages(SHAREGPT) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert data.to_messages(MESSAGES) == MESSAGES["messages"]
    assert data.to_messages(ALPACA) == [
        {"role": "user", "content": "Add the numbers.\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]


def test_real_files_in_both_shared_formats(data_dir: Path):
    sharegpt = data.read_rows(str(data_dir / "instruct" / "sharegpt_sample.jsonl"))
    alpaca = data.read_rows(str(data_dir / "instruct" / "alpaca_en_demo.json"))
    assert {data.detect_format(r) for r in sharegpt} == {"sharegpt"}
    assert {data.detect_format(r) for r in alpaca} == {"alpaca"}
    chats = data.conversations(sharegpt)
    assert 900 < len(chats) <= len(sharegpt)
    assert all(c[-1]["role"] == "assistant" and c[0]["role"] in ("user", "system") for c in chats)


def test_unknown_format_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps({"text": "just text"}) + "\n")
    with pytest.raises(data.DataFormatError, match=r"keys \(text\) is in no known format.*conversations"):
        data.conversations(data.read_rows(str(path)))
    path.write_text("this is not json\n")
    with pytest.raises(data.DataFormatError, match=r"notes\.jsonl:1 is not JSON"):
        data.read_rows(str(path))
    with pytest.raises(FileNotFoundError, match="pass --data PATH"):
        data.read_rows(str(tmp_path / "missing.jsonl"))


def test_score_filter_dedup_and_empty_turns():
    low = {**SHAREGPT, "score": 2.0}
    empty = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "  "}]}
    no_answer = {"messages": [{"role": "user", "content": "Hi"}]}
    chats = data.conversations([SHAREGPT, dict(SHAREGPT), low, empty, no_answer, MESSAGES], min_score=3.0)
    assert chats == [data.to_messages(SHAREGPT), data.to_messages(MESSAGES)]  # unscored rows pass the filter


def test_label_mask_keeps_only_assistant_turns_and_their_end_token(tokenizer):
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "It is 4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6, of course."},
    ]
    example = data.tokenize(tokenizer, chat)
    assert len(example.labels) == len(example.input_ids)
    assert data.kept_text(tokenizer, example) == "It is 4.<|im_end|>6, of course.<|im_end|>"
    # every kept label is the token at that position: nothing shifted, nothing invented
    assert all(lab in (data.IGNORE, tok) for lab, tok in zip(example.labels, example.input_ids, strict=True))
    assert tokenizer.decode(example.input_ids).startswith("<|im_start|>system\nBe brief.")


def test_label_mask_on_real_rows(tokenizer, data_dir: Path):
    rows = data.read_rows(str(data_dir / "instruct" / "sharegpt_sample.jsonl"))[:20]
    for chat in data.conversations(rows):
        kept = data.kept_text(tokenizer, data.tokenize(tokenizer, chat))
        answers = [m["content"] + "<|im_end|>" for m in chat if m["role"] == "assistant"]
        assert kept == "".join(answers)


def test_build_drops_over_long_by_tokens_and_splits(tokenizer, data_dir: Path):
    rows = data.read_rows(str(data_dir / "instruct" / "sharegpt_sample.jsonl"))[:60]
    train, evals, counts = data.build(rows, tokenizer, max_seq_len=128, eval_size=5, seed=1)
    assert counts["too_long"] > 0 and len(evals) == 5 and counts["train"] == len(train)
    assert all(len(e.input_ids) <= 128 for e in train + evals)
    again, _, _ = data.build(rows, tokenizer, max_seq_len=128, eval_size=5, seed=1)
    assert [e.input_ids for e in again] == [e.input_ids for e in train]  # the split is reproducible
    with pytest.raises(data.DataFormatError, match="raise max_seq_len"):
        data.build(rows, tokenizer, max_seq_len=8, eval_size=5, seed=1)
