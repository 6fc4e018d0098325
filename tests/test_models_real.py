"""The Model API on the real embedded model, on both backends; every constrained output is validated."""

from __future__ import annotations

import json
import math
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from tutor.models import ModelError, Regex
from tutor.models.base import to_messages

QUIZLIKE = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "maxLength": 120},
        "options": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 4, "maxItems": 4},
        "answer": {"type": "string", "enum": ["A", "B", "C", "D"]},
        "meta": {
            "type": "object",
            "properties": {"difficulty": {"enum": ["easy", "hard"]}, "points": {"type": "integer"}},
            "required": ["difficulty", "points"],
        },
    },
    "required": ["question", "options", "answer", "meta"],
}


class Concept(BaseModel):
    name: str = Field(max_length=40)
    kind: Literal["supervised", "unsupervised", "reinforcement"]
    examples: list[str] = Field(min_length=1, max_length=3)


def test_json_schema_dict_nested_enums_and_bounded_arrays(any_model) -> None:
    text = any_model.generate(
        "Write a multiple-choice question about gradient descent as JSON.", QUIZLIKE, max_tokens=300
    )
    value = json.loads(text)
    jsonschema.validate(value, QUIZLIKE)
    assert len(value["options"]) == 4


def test_pydantic_model(any_model) -> None:
    text = any_model.generate("Describe k-means clustering as JSON.", Concept, max_tokens=200)
    concept = Concept.model_validate_json(text)
    assert 1 <= len(concept.examples) <= 3


def test_choices_and_regex(any_model) -> None:
    options = ["overfitting", "underfitting", "regularization"]
    assert any_model.generate("A model that memorises its training set is...", options) in options
    phone = any_model.generate("Give me a phone number.", Regex(r"\(\d{3}\) \d{3}-\d{4}"))
    Regex(r"\(\d{3}\) \d{3}-\d{4}")  # the pattern compiles
    import re

    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", phone), phone


def test_schema_file(any_model, tmp_path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}))
    assert isinstance(json.loads(any_model.generate("Is the sky blue?", path, max_tokens=20))["ok"], bool)


def test_stream_joins_to_the_greedy_answer(any_model) -> None:
    prompt = "Name one optimizer used to train neural networks."
    pieces = list(any_model.stream(prompt, max_tokens=24))
    assert len(pieces) > 1, "stream should yield the answer in pieces"
    assert "".join(pieces) == any_model.generate(prompt, max_tokens=24)


def test_choose_is_a_distribution_over_the_letters(any_model) -> None:
    prompt = "Which is a fruit? A) car B) apple C) chair D) road\nAnswer with the letter only."
    picks = any_model.choose([prompt, prompt + " "], ["A", "B", "C", "D"])
    for pick in picks:
        assert pick.answer in "ABCD"
        assert math.isclose(sum(pick.probs.values()), 1.0, rel_tol=1e-6)
        assert pick.answer == max(pick.probs, key=pick.probs.get)


def test_loglikelihood_prefers_the_true_continuation(any_model) -> None:
    good, bad = any_model.loglikelihood(
        [("The capital of France is", " Paris"), ("The capital of France is", " pizza")]
    )
    assert good < 0 and bad < good


def test_backends_agree_on_scores(llama_model, hf_model) -> None:
    # Same weights (Q4_1 dequantized), different kernels: log-probs agree closely.
    pairs = [("Water boils at 100 degrees", " Celsius"), ("The opposite of hot is", " cold")]
    for a, b in zip(llama_model.loglikelihood(pairs), hf_model.loglikelihood(pairs), strict=True):
        assert abs(a - b) < 0.5, (a, b)


def test_packed_scoring_equals_one_plain_forward_pass_per_choice(hf_model) -> None:
    # transformers scores a question's choices in one packed pass (shared context, branch-only attention,
    # logits only where wanted); each score must equal the plain pass over context + choice alone.
    import torch

    pairs = [
        ("Question: Which gas do plants absorb?\nAnswer:", " carbon dioxide"),
        ("Question: Which gas do plants absorb?\nAnswer:", " oxygen"),
        ("Question: Which gas do plants absorb?\nAnswer:", " helium from the deep ocean floor"),
        ("Water boils at 100 degrees", " Celsius"),
    ]
    tok, hf = hf_model.tokenizer, hf_model.hf
    want = []
    with torch.inference_mode():
        for ctx, cont in pairs:
            c, x = tok(ctx, add_special_tokens=False).input_ids, tok(ctx + cont, add_special_tokens=False).input_ids
            logprobs = torch.log_softmax(hf(torch.tensor([x])).logits[0].float(), dim=-1)
            want.append(float(sum(logprobs[k - 1, x[k]] for k in range(len(c), len(x)))))
    got = hf_model.loglikelihood(pairs)
    assert got == pytest.approx(want, abs=1e-3), (got, want)


def test_batched_choose_equals_one_plain_forward_pass_per_prompt(hf_model) -> None:
    # transformers reads letters from a shared prefix's cache plus padded batches of the prompts'
    # tails (different lengths, so padding is exercised); each row must equal a plain pass alone.
    import torch

    prompts = [
        "Which is a fruit?\nA. car\nB. apple\nC. chair\nD. road",
        "Which gas do plants absorb from the air during photosynthesis?\nA. carbon dioxide\nB. helium",
        "2 + 2 = ?\nA. 4\nB. 5\nC. 22",
    ]
    letters = ["A", "B", "C", "D"], ["A", "B"], ["A", "B", "C"]
    picks = hf_model.choose(prompts, letters)
    tok, hf = hf_model.tokenizer, hf_model.hf
    with torch.inference_mode():
        for prompt, opts, pick in zip(prompts, letters, picks, strict=True):
            ids = tok(hf_model.render(to_messages(prompt)), add_special_tokens=False).input_ids
            logprobs = torch.log_softmax(hf(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            want = [float(logprobs[tok(o, add_special_tokens=False).input_ids[0]]) for o in opts]
            assert [pick.logprobs[o] for o in opts] == pytest.approx(want, abs=1e-3), (prompt, pick.logprobs, want)
    # Raw text (no chat template), the letters spaced as after "Answer:".
    raw = [f"Question: {p}\nAnswer:" for p in prompts]
    spaced = [[" " + o for o in opts] for opts in letters]
    with torch.inference_mode():
        for text, opts, pick in zip(raw, spaced, hf_model.choose(raw, spaced, chat=False), strict=True):
            ids = tok(text, add_special_tokens=False).input_ids
            logprobs = torch.log_softmax(hf(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            want = [float(logprobs[tok(text + o, add_special_tokens=False).input_ids[len(ids)]]) for o in opts]
            assert [pick.logprobs[o] for o in opts] == pytest.approx(want, abs=1e-3), (text, pick.logprobs, want)


def test_self_check_catches_unconstrained_decoding(any_model, monkeypatch) -> None:
    # Simulate outlines' failure mode on llama.cpp: the constraint silently does nothing.
    from tutor.models.grammar import FREE

    monkeypatch.setattr(any_model.grammar, "steer", lambda constraint: FREE)
    with pytest.raises(ModelError, match="constrained decoding is not active"):
        any_model.self_check()


def test_compiled_grammars_are_cached(any_model) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    any_model.generate("Pick a number.", schema, max_tokens=40)  # room for 15 digits, one token each
    compiled = any_model.grammar.compiled  # one compile per schema, in the one bounded cache
    any_model.generate("Pick another number.", schema, max_tokens=40)
    assert any_model.grammar.compiled == compiled
    assert 0 < len(any_model.grammar) <= any_model.grammar.maxsize


def test_sampling_is_repeatable_and_leaves_global_random_state_alone(any_model) -> None:
    import random

    import numpy as np

    prompt = "Write one sentence about learning rates."
    before = (random.getstate(), np.random.get_state()[1].tolist())
    torch_before = _torch_state()
    first = any_model.generate(prompt, max_tokens=16, temperature=1.0, seed=7)
    assert any_model.generate(prompt, max_tokens=16, temperature=1.0, seed=7) == first
    assert (random.getstate(), np.random.get_state()[1].tolist()) == before
    assert _torch_state() == torch_before, "a seeded request reseeded torch's global generator"


def _torch_state() -> list[int] | None:
    import sys

    torch = sys.modules.get("torch")  # only the transformers backend imports torch
    return None if torch is None else torch.random.get_rng_state().tolist()


def test_a_stream_may_be_resumed_on_another_thread(llama_model) -> None:
    # Gradio steps a streaming generator on whichever worker thread is free.
    import threading

    want = llama_model.generate("Count to five.", max_tokens=8)  # greedy: the stream must say the same
    stream = llama_model.stream("Count to five.", max_tokens=8)
    first = next(stream)
    rest: list[str] = []
    errors: list[BaseException] = []

    def resume() -> None:
        try:
            rest.extend(stream)
        except BaseException as exc:  # a worker's exception is only a warning in pytest: carry it back
            errors.append(exc)

    worker = threading.Thread(target=resume)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the resumed stream never finished"
    assert not errors, f"resuming the stream on another thread raised {errors[0]!r}"
    assert first and rest, "the stream yielded its first piece here and the rest on the worker"
    assert first + "".join(rest) == want
    assert llama_model.generate("Say yes or no.", ["yes", "no"]) in ("yes", "no")  # the lock was released


def test_numeric_ranges_are_enforced(llama_model) -> None:
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["score", "stars"],
    }
    for topic in ("dropout", "precision and recall", "attention"):
        value = json.loads(llama_model.generate(f"Grade an answer about {topic} as JSON.", schema, max_tokens=60))
        jsonschema.validate(value, schema)


def test_outlines_core_engine_on_both_backends(llama_model, hf_model) -> None:
    # The same grammar module serves every engine on both backends; the self-check proves the masks bite.
    from tutor.models import load_model
    from tutor.models.transformers import TransformersModel

    hf = TransformersModel(hf_model.hf, hf_model.tokenizer, grammar_backend="outlines_core")
    with load_model(llama_model.path, grammar_backend="outlines_core") as llama:
        for model in (llama, hf):
            model.self_check()
            assert model.grammar.engine == "outlines_core" and model.grammar.compiled == 2
            value = json.loads(model.generate("Pick a number as JSON.", {"type": "object", "properties": {
                "n": {"type": "integer"}}, "required": ["n"]}, max_tokens=20))  # fmt: skip
            assert isinstance(value["n"], int)


def test_an_engine_a_backend_lacks_is_refused_at_load(llama_model, hf_model) -> None:
    import importlib.util

    from tutor.models import load_model
    from tutor.models.transformers import TransformersModel

    offered = r"llama\.cpp backend supports grammar_backend 'llguidance' or 'outlines_core', not 'xgrammar'"
    with pytest.raises(ModelError, match=offered):
        load_model(llama_model.path, grammar_backend="xgrammar")
    if importlib.util.find_spec("xgrammar") is None:  # an optional engine: its error says how to get it
        with pytest.raises(ModelError, match="pip install xgrammar"):
            TransformersModel(hf_model.hf, hf_model.tokenizer, grammar_backend="xgrammar").self_check()


def test_transformers_decodes_concurrent_greedy_calls_in_one_batch_with_the_same_text(hf_model) -> None:
    import threading

    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40}}, "required": ["answer"]}
    calls = [
        lambda: hf_model.generate("Explain overfitting in one sentence.", max_tokens=24),
        lambda: hf_model.generate("Describe dropout.", schema, max_tokens=40),
        lambda: hf_model.generate("Is the sky blue? Answer yes or no.", ["yes", "no"], max_tokens=4),
        lambda: hf_model.generate("Write a haiku about rain.", max_tokens=12),
    ]
    alone = [call() for call in calls]
    batches = []
    real = hf_model._generate_batch
    hf_model._generate_batch = lambda batch: (batches.append(len(batch)), real(batch))[1]
    try:
        results: list = [None] * len(calls)
        start = threading.Barrier(len(calls))

        def run(i: int) -> None:
            start.wait()
            results[i] = calls[i]()

        hf_model._lock.acquire()  # hold the model while all four queue, as four students would behind a request
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        while len(hf_model._waiting) < len(calls):
            threading.Event().wait(0.01)
        hf_model._lock.release()
        for t in threads:
            t.join(timeout=300)
    finally:
        hf_model._generate_batch = real
    assert results == alone, "a row of a batch decodes what it decodes alone"
    assert batches == [4], "the four waiting calls went into one generate"
    assert json.loads(results[1])["answer"] and results[2] in ("yes", "no")


def test_transformers_batches_two_calls_made_at_once_on_an_idle_model(hf_model, monkeypatch) -> None:
    import threading

    from tutor.models import transformers

    monkeypatch.setattr(transformers, "GATHER_S", 1.0)  # the mechanism, not the timing: a loaded CI may be slow

    prompts = ["Explain overfitting in one sentence.", "Describe dropout in one sentence."]
    alone = [hf_model.generate(p, max_tokens=16) for p in prompts]
    batches = []
    real = hf_model._generate_batch
    hf_model._generate_batch = lambda batch: (batches.append(len(batch)), real(batch))[1]
    try:
        results: list = [None, None]
        start = threading.Barrier(2)

        def run(i: int) -> None:
            start.wait()  # two students press at once; nobody holds the model
            results[i] = hf_model.generate(prompts[i], max_tokens=16)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        hf_model._generate_batch = real
    assert results == alone
    assert batches == [2], "the first call waited for the second instead of decoding alone"


def test_a_closed_transformers_stream_stops_its_generate_before_the_next_call(hf_model) -> None:
    made = []
    real = hf_model.hf.generate

    def generate(*args, **kwargs):
        out = real(*args, **kwargs)
        made.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    hf_model.hf.generate = generate
    try:
        stream = hf_model.stream("Write a long essay about neural networks.", max_tokens=200)
        assert next(stream)
        stream.close()  # Stop in the page, or a client that went away
        assert made and made[0] < 200, "the generate ran on after its stream was closed"
        assert hf_model._lock.acquire(blocking=False), "the model is free for the next call"
        hf_model._lock.release()
    finally:
        del hf_model.hf.generate
