"""The server backend's request mapping, against recorded vLLM / SGLang / llama-server exchanges (no server).

Each recorded file (tests/data/openai, see its README) lists what the server accepts and answers; the mock
transport refuses any request no recording matches, so a wrong field name fails here, not in a student's
quiz. The real llama-cpp-python server is exercised in tests/test_models_openai_server.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tutor.models import ModelError, gbnf, load_model
from tutor.models.constraints import Choices, ConstraintViolation, Json, Pattern
from tutor.models.openai import OpenAIServerModel
from tutor.models.openai_wire import harness_split, sse_event
from tutor.models.server_profiles import CapabilityError, LlamaCppPython, detect

DATA = Path(__file__).parent / "data" / "openai"
ROOT = "http://gpu-box:8000"


def _subset(wanted: Any, got: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in wanted.items())
    return wanted == got


class Recorded:
    """An httpx transport that answers from a recording, in order of first match, and keeps what it was sent."""

    def __init__(self, name: str) -> None:
        self.exchanges = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
        self.used: set[int] = set()
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        with self.lock:
            self.sent.append((request.url.path, body))
            for i, ex in enumerate(self.exchanges):
                if i in self.used or ex["method"] != request.method or ex["path"] != request.url.path:
                    continue
                if _subset(ex["request"], body):
                    self.used.add(i)
                    return httpx.Response(ex["status"], json=ex["response"])
        return httpx.Response(404, json={"error": {"message": f"unrecorded {request.method} {request.url.path}"}})

    def model(self, **options: Any) -> OpenAIServerModel:
        return load_model(f"openai:{ROOT}/v1", transport=httpx.MockTransport(self), backoff=0.0, **options)


# ---- profiles and their requests ------------------------------------------------------------------------


def test_vllm_is_detected_checked_and_answers_with_exact_label_tokens() -> None:
    server = Recorded("vllm")
    model = server.model()  # the self-check's three probes must each match a recording
    assert model.profile.name == "vllm" and model.name == "meta-llama/Llama-3.2-3B-Instruct"
    [choice] = model.choose(["2+2=4? A: yes, B: no"], ["A", "B"])
    assert choice.answer == "B" and choice.logprobs == {"A": -1.61, "B": -0.22}
    assert choice.probs["B"] == pytest.approx(1 / (1 + 2.718281828 ** (-1.61 + 0.22)), rel=1e-6)


def test_vllm_loglikelihood_skips_the_context_tokens_of_the_echo() -> None:
    server = Recorded("vllm")
    model = server.model(self_check=False)
    # The context's 12 tokens (BOS included) are skipped; the last echoed value is the generated token.
    assert model.loglikelihood([("Question: What is 2+2?\nAnswer:", " 4")]) == [pytest.approx(-0.75)]


def test_a_vllm_without_logprob_token_ids_falls_back_to_its_top_logprobs() -> None:
    server = Recorded("vllm_no_label_ids")
    model = server.model()
    [choice] = model.choose(["2+2=4? A: yes, B: no"], ["A", "B"])
    assert choice.answer == "B" and choice.logprobs == {"A": -1.61, "B": -0.22}
    assert model._label_ids_ok is False, "the next prompts no longer ask for label ids"
    asked = [b for path, b in server.sent if path == "/v1/chat/completions" and b.get("logprobs")]
    assert "logprob_token_ids" in asked[0] and "logprob_token_ids" not in asked[1]


def test_sglang_maps_choices_to_a_regex_and_scores_by_echo() -> None:
    model = Recorded("sglang").model()
    assert model.profile.name == "sglang"
    [choice] = model.choose(["Which?"], ["A", "B", "C"])
    assert choice.answer == "C" and choice.logprobs == {"A": -1.7, "B": -2.9, "C": -0.3}
    assert model.loglikelihood([("Question: What is 2+2?\nAnswer:", " 4")]) == [pytest.approx(-0.4)]


def test_llama_server_sends_grammars_and_refuses_loglikelihood_naming_the_alternative() -> None:
    model = Recorded("llama_server").model()
    assert model.profile.name == "llama-server"
    with pytest.raises(CapabilityError, match=r"llama-server.*--mode letter"):
        model.loglikelihood([("2+2=", "4")])


def test_a_server_that_ignores_constraints_is_refused_at_load() -> None:
    with pytest.raises(ModelError, match=r"ignores constraints sent as structured_outputs.*--allow-unconstrained"):
        Recorded("vllm_ignores_constraints").model()


def test_allow_unconstrained_validates_retries_and_marks_the_model() -> None:
    server = Recorded("vllm_ignores_constraints")
    free = server.exchanges[1]["response"]
    server.exchanges += [
        {"method": "POST", "path": "/v1/chat/completions", "request": {}, "status": 200, "response": free},
        {
            "method": "POST",
            "path": "/v1/chat/completions",
            "request": {"temperature": 0.7},
            "status": 200,
            "response": {**free, "choices": [{"index": 0, "message": {"content": "B"}}]},
        },
    ]
    model = server.model(allow_unconstrained=True)
    assert model.name.endswith("(unconstrained)") and not model.constrained
    assert model.generate("A or B?", ["A", "B"]) == "B", "the second, sampled, try was valid"
    with pytest.raises(CapabilityError, match="does not enforce constraints"):
        model.choose(["A or B?"], ["A", "B"])


def test_profile_fields_per_server() -> None:
    schema = Json('{"type":"object"}')
    vllm, sglang = Recorded("vllm"), Recorded("sglang")
    assert vllm.model(self_check=False).profile.fields(Pattern("a+")) == {"structured_outputs": {"regex": "a+"}}
    assert sglang.model(self_check=False).profile.fields(schema) == {
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}}
    }
    assert LlamaCppPython().tokenize_body("a", special=False) == {"input": "a"}
    fields = LlamaCppPython().fields(Choices(("A", 'say "hi"')))
    assert fields == {"grammar": 'root ::= "A" | "say \\"hi\\""'}


def test_detection_falls_back_to_probing_endpoints_only_one_flavour_has() -> None:
    def probe_for(path_ok: str):
        return lambda method, path: path == path_ok

    unknown = {"data": [{"id": "m", "owned_by": "organization-owner"}]}
    assert detect(unknown, probe_for("/version")).name == "vllm"
    assert detect(unknown, probe_for("/get_server_info")).name == "sglang"
    assert detect(unknown, probe_for("/props")).name == "llama-server"
    assert detect(unknown, probe_for("/extras/tokenize")).name == "llama-cpp-python"
    assert detect(unknown, probe_for("/nothing")).name == "openai"
    assert detect({"data": [{"id": "m", "owned_by": "vllm"}]}, probe_for("/props")).name == "vllm"


def test_the_model_name_must_be_one_the_server_serves() -> None:
    with pytest.raises(ModelError, match=r"serves \['meta-llama/Llama-3.2-3B-Instruct'\], not 'llama-70b'"):
        Recorded("vllm").model(model="llama-70b", self_check=False)


# ---- transport: retries, errors, concurrency, keys ---------------------------------------------------------


def _models_then(handler):
    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "owned_by": "vllm"}]})
        return handler(request)

    return httpx.MockTransport(serve)


def _answer(text: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})


def test_overload_and_dropped_connections_are_retried_with_backoff() -> None:
    failures = [httpx.Response(503), httpx.Response(429, headers={"retry-after": "0"}), "reset"]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            failure = failures.pop(0)
            if failure == "reset":
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            return failure
        return _answer("hello")

    model = OpenAIServerModel(f"{ROOT}/v1", transport=_models_then(handler), backoff=0.0)
    assert model.generate("hi") == "hello" and not failures


def test_a_dead_server_is_a_clear_error_after_the_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(ModelError, match=r"after 2 tries .*is the server running"):  # at load: one retry only
        OpenAIServerModel(f"{ROOT}/v1", transport=httpx.MockTransport(handler), retries=2, backoff=0.0)


def test_a_refused_request_names_the_server_and_its_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "max_tokens is too large: 99999"}})

    model = OpenAIServerModel(f"{ROOT}/v1", transport=_models_then(handler), backoff=0.0)
    with pytest.raises(ModelError, match=r"vLLM at .* refused .*HTTP 400.*max_tokens is too large"):
        model.generate("hi", max_tokens=99999)


def test_prompts_go_out_concurrently_but_never_more_than_max_in_flight() -> None:
    now, peak, lock = [0], [0], threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        return (
            httpx.Response(
                200,
                json={
                    "choices": [
                        {
                            "index": 0,
                            "text": " 4",
                            "logprobs": {
                                "tokens": ["Q", " 4", "\n"],
                                "token_logprobs": [None, -0.5, -1.0],
                                "top_logprobs": [],
                            },
                        }
                    ]
                },
            )
            if request.url.path == "/v1/completions"
            else httpx.Response(200, json={"tokens": [1]})
        )

    model = OpenAIServerModel(f"{ROOT}/v1", transport=_models_then(handler), max_in_flight=3, backoff=0.0)
    assert model.concurrency == 3, "the app and the quiz writer send as many at once"
    assert model.loglikelihood([("Q", " 4")] * 12) == [-0.5] * 12
    assert 1 < peak[0] <= 3, peak


def test_the_key_comes_from_ta_api_key_then_openai_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"data": [{"id": "m", "owned_by": "vllm"}]})

    monkeypatch.delenv("TA_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    OpenAIServerModel(f"{ROOT}/v1", transport=httpx.MockTransport(handler))
    monkeypatch.setenv("TA_API_KEY", "sk-ta")
    OpenAIServerModel(f"{ROOT}/v1", transport=httpx.MockTransport(handler))
    assert seen == ["Bearer sk-openai", "Bearer sk-ta"]


def _sse(pieces: list[str], finish: str | None) -> str:
    events = [{"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]} for piece in pieces]
    if finish:
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + ": ping\n\ndata: [DONE]\n\n"


def test_stream_reads_server_sent_events_and_checks_the_whole_text() -> None:
    sse = _sse(['{"zq"', ": 1", "}"], "stop")

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    model = OpenAIServerModel(f"{ROOT}/v1", transport=_models_then(handler))
    assert list(model.stream("code?", {"type": "object", "required": ["zq"]})) == ['{"zq"', ": 1", "}"]
    with pytest.raises(ConstraintViolation):
        list(model.stream("code?", {"type": "object", "required": ["other"]}))
    assert sse_event(": keep-alive") == ("", None) and sse_event("data: [DONE]") is None


def test_a_stream_the_server_cuts_short_is_an_error_not_a_shorter_answer() -> None:
    # llama-cpp-python's server (--interrupt_requests true, its default) sends [DONE] mid-answer when another
    # request arrives: no finish_reason came, so the pieces so far are not the answer.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, text=_sse(["Dropout", " drops"], None), headers={"content-type": "text/event-stream"}
        )

    model = OpenAIServerModel(f"{ROOT}/v1", transport=_models_then(handler))
    pieces = []
    with pytest.raises(ModelError, match=r"before it finished .*--interrupt_requests false"):
        pieces.extend(model.stream("What is dropout?"))
    assert pieces == ["Dropout", " drops"]


def test_registry_rejects_backend_flags_and_non_urls_for_servers() -> None:
    with pytest.raises(ModelError, match="drop --backend"):
        load_model(f"openai:{ROOT}/v1", backend="llamacpp")
    with pytest.raises(ModelError, match="is not a URL"):
        load_model("openai:gpu-box:8000")


# ---- pure pieces --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "grammar"),
    [
        (r"[0-9]{3}-[a-z]{2}", 'root ::= [0-9]{3} "-" [a-z]{2}'),
        (r"(?:Yes\.|No\.)(?: (?:Yes\.|No\.)){0,2}", 'root ::= ("Yes." | "No.") (" " ("Yes." | "No.")){0,2}'),
        (r"\d+(\.\d+)?", 'root ::= [0-9]+ (("." [0-9]+))?'),
        (r"^a\"b$", 'root ::= "a\\"b"'),
        (r"[^\n]*", "root ::= [^\\n]*"),
    ],
)
def test_regexes_become_gbnf(pattern: str, grammar: str) -> None:
    assert gbnf.regex(pattern) == grammar


@pytest.mark.parametrize("pattern", [r"(?=a)b", r"(a)\1", r"a\bb"])
def test_regex_features_gbnf_cannot_express_are_refused(pattern: str) -> None:
    with pytest.raises(gbnf.GrammarError, match="no GBNF form"):
        gbnf.regex(pattern)


def test_bounded_numbers_are_spelt_out_exactly() -> None:
    expression = gbnf.number(0, 1, integer=False)
    ok = re.compile(r"(0|1)(\.[0-9]{1,15})?")
    assert expression == '(("0") ("." [0-9]{1,15})? | "1" ("." "0"{1,15})?)'
    assert ok.fullmatch("0.75") and gbnf.number(1, 3, integer=True) == '("1" | "2" | "3")'
    assert gbnf.number(0.5, 2, integer=False) is None, "a fractional bound is left to the check"


def test_llama_cpp_python_json_grammars_keep_control_characters_out_of_strings() -> None:
    pytest.importorskip("llama_cpp")
    grammar = LlamaCppPython().json_fields({"type": "object", "properties": {"a": {"type": "string"}}})["grammar"]
    assert r'char ::= [^"\\\x7F\x00-\x1F] |' in grammar
    bounded = LlamaCppPython().json_fields({"type": "number", "minimum": 0, "maximum": 1})["grammar"]
    assert '"1" ("." "0"{1,15})?' in bounded


def test_the_harness_split_moves_trailing_spaces_to_the_continuation() -> None:
    assert harness_split("Answer: ", "4") == ("Answer:", " 4")
    assert harness_split("Answer:", " 4") == ("Answer:", " 4")


def test_a_server_that_dies_mid_run_leaves_the_benchmark_resumable(tmp_path, data_dir) -> None:
    from benchmarks.run import RunSpec, read_predictions, run

    alive, asked = [True], []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if not alive[0]:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        asked.append(body["messages"][-1]["content"])
        if len(asked) == 3:  # the third question: the server goes down
            alive[0] = False
            raise httpx.ConnectError("[Errno 111] Connection refused")
        options = body["regex"].strip("()").split("|")
        rows = [{"token": o, "logprob": -1.0 - i} for i, o in enumerate(options)]
        return httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "index": 0,
                        "message": {"content": options[0]},
                        "logprobs": {"content": [{**rows[0], "top_logprobs": rows}]},
                    }
                ]
            },
        )

    def served():
        return OpenAIServerModel(
            f"{ROOT}/v1", transport=_models_then(handler), profile="sglang", max_in_flight=1, retries=1, backoff=0.0
        )

    spec = RunSpec(
        task="arc_challenge",
        mode="letter",
        model=f"openai:{ROOT}/v1",
        data=data_dir,
        split="validation",
        limit=6,
        batch_size=2,
        out=tmp_path / "run",
    )
    with pytest.raises(ModelError, match="is the server running"):
        run(served(), spec, progress=False)
    assert len(read_predictions(tmp_path / "run" / "predictions.jsonl")) == 2, "the first batch was kept"
    alive[0], before = True, len(asked)
    summary = run(served(), spec, progress=False)
    assert summary["n"] == 6 and len(asked) - before == 4, "only the 4 unanswered questions were asked again"


def test_the_server_flags_reach_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from tutor import cli

    seen = {}
    monkeypatch.setattr("tutor.models.registry.load_model", lambda spec, **kw: seen.update(spec=spec, **kw))
    args = cli.build_parser().parse_args(
        ["quiz", "dropout", "--model", f"openai:{ROOT}/v1", "--server-model", "m", "--server-profile", "vllm",
         "--in-flight", "8", "--allow-unconstrained", "--threads", "1"]
    )  # fmt: skip
    cli.load_from_args(args)
    assert seen == {"spec": f"openai:{ROOT}/v1", "backend": None, "adapter": None, "n_threads": 1, "model": "m",
                    "profile": "vllm", "max_in_flight": 8, "allow_unconstrained": True}  # fmt: skip
    args = cli.build_parser().parse_args(["quiz", "dropout", "--model", f"openai:{ROOT}/v1", "--in-flight", "0"])
    with pytest.raises(cli.CLIError, match="--in-flight must be at least 1"):
        cli.load_from_args(args)


def test_llama_cpp_python_scores_its_tokenizers_tokens_even_when_the_grammar_spells_otherwise() -> None:
    vocab = {"Q:": [10], "Q: banana": [10, 21, 22], "": []}  # " banana" is " ban" + "ana" to the tokenizer
    steps = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m.gguf", "owned_by": "me"}]})
        if request.url.path == "/extras/tokenize":
            return httpx.Response(200, json={"tokens": vocab[body["input"]]})
        if request.url.path == "/extras/detokenize":
            return httpx.Response(200, json={"text": {(21,): " ban"}[tuple(body["tokens"])]})
        if "grammar" in body:  # the forced continuation comes back spelt in three tokens
            assert body["logit_bias"] == {"21": 100.0, "22": 100.0} and body["prompt"] == "Q:"
            pieces = [" b", "anan", "a"]
        else:  # one token at a time, forced by the bias alone
            steps.append((body["prompt"], body["logit_bias"]))
            pieces = {"Q:": [" ban"], "Q: ban": ["ana"]}[body["prompt"]]
        values = {" ban": -1.5, "ana": -0.25}
        return httpx.Response(200, json={"choices": [{"index": 0, "text": "".join(pieces), "logprobs": {
            "tokens": pieces, "token_logprobs": [values.get(p, -9.0) for p in pieces]}}]})  # fmt: skip

    model = OpenAIServerModel(f"{ROOT}/v1", transport=httpx.MockTransport(handler), backoff=0.0)
    assert model.profile.name == "llama-cpp-python"
    assert model.loglikelihood([("Q:", " banana")]) == [pytest.approx(-1.75)]
    assert steps == [("Q:", {"21": 100.0}), ("Q: ban", {"22": 100.0})]
