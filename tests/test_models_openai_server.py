"""The server backend against a real OpenAI-compatible server: llama-cpp-python's, on the embedded GGUF.

The fixture starts ``python -m llama_cpp.server`` on a free port of 127.0.0.1 with one thread, once for the
whole module (the only one that needs it), and stops it after. Default tier, the acceptance list at CI size:
one prompt per validity schema, regex/choice/stream constraints, ``loglik`` and ``letter`` parity with
in-process llama.cpp on one ARC question, ``ta quiz -n 3``, and the app's /chat and /quiz through the server
(about 6 minutes at load 12, 2 cores). ``-m slow``: all 100 validity prompts and parity on 10 questions.
The 299-question parity and the throughput figures are ``scripts/server_parity.py``.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.validity import invalid_outputs


@pytest.fixture(scope="module")
def server_url():
    """A llama-cpp-python server on the embedded GGUF, one thread, 127.0.0.1, a free port."""
    from tutor.models import embedded
    from tutor.models.local_server import LocalServer, missing_modules

    if missing := missing_modules():
        pytest.skip(f"llama-cpp-python's server needs {', '.join(missing)}: pip install -e '.[dev]'")
    with LocalServer(embedded.gguf_path(), threads=1, alias=embedded.NAME) as url:
        yield url


@pytest.fixture(scope="module")
def server_model(server_url: str):
    """The served model behind the Model API, self-checked at load."""
    from tutor.models import load_model

    model = load_model(f"openai:{server_url}")
    yield model
    model.close()


def test_the_server_is_detected_and_its_constraints_proved(server_model) -> None:
    from tutor.models import embedded

    assert server_model.backend == "openai" and server_model.profile.name == "llama-cpp-python"
    assert server_model.constrained and server_model.name == embedded.NAME


def test_every_validity_schema_is_met_through_the_server(server_model) -> None:
    assert invalid_outputs(server_model, n_prompts=1) == []


@pytest.mark.slow
def test_all_100_validity_prompts_are_valid_through_the_server(server_model) -> None:
    assert invalid_outputs(server_model) == []


def test_regexes_choices_and_streams_are_enforced_by_the_server(server_model) -> None:
    from tutor.grounded import sentence_regex

    sentences = ["Dropout drops units at random.", 'It "regularizes" (a lot)?']
    text = server_model.generate("What does dropout do?", sentence_regex(sentences, most=2), max_tokens=40)
    assert text in (*sentences, *(f"{a} {b}" for a in sentences for b in sentences)), text
    assert server_model.generate("Is 7 prime?", ["yes", "no"]) in ("yes", "no")
    schema = {
        "type": "object",
        "properties": {"greeting": {"type": "string", "maxLength": 40}},
        "required": ["greeting"],
    }
    pieces = list(server_model.stream("Say hello as JSON.", schema, max_tokens=40))
    assert len(pieces) > 3 and isinstance(json.loads("".join(pieces))["greeting"], str), pieces


@pytest.mark.parametrize("n", [1, pytest.param(10, marks=pytest.mark.slow)])
def test_choose_and_loglikelihood_match_in_process_llama_cpp(server_model, llama_model, data_dir, n) -> None:
    from benchmarks import modes
    from benchmarks.tasks import load_task

    questions = load_task("arc_challenge", data_dir, split="validation", sample=n, seed=1)
    for mode in (modes.loglik, modes.letter):
        here, there = mode(llama_model, questions), mode(server_model, questions)
        for a, b in zip(here, there, strict=True):
            assert a.prediction == b.prediction, (mode.__name__, a, b)
            assert a.scores.keys() == b.scores.keys()
            for letter, value in a.scores.items():
                assert b.scores[letter] == pytest.approx(value, abs=1e-3), (mode.__name__, a.id, letter)


def test_the_app_chats_and_quizzes_through_the_server(server_model) -> None:
    import app
    import app_serve
    from quizgen import export
    from tutor.models.local_server import free_port
    from tutor.tutors import NO_KB

    tutor, agent, grounded = app_serve.make_programs(server_model)
    demo = app.build_app(tutor, agent, grounded)
    port = free_port()
    app_serve.launch(demo, port=port, block=False)
    try:
        from gradio_client import Client

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        reply = client.predict("What is overfitting?", NO_KB, api_name="/chat")
        assert len(reply.strip()) > 20, reply
        quiz = export.from_json(client.predict("dropout", 1, "easy", api_name="/quiz"))  # validates the schema
        assert len(quiz.questions) == 1 and quiz.questions[0].question.source is not None
    finally:
        demo.close()


def test_ta_quiz_writes_three_questions_through_the_server(server_url, capsys) -> None:
    from quizgen import export
    from tutor.cli import main

    assert main(["quiz", "dropout", "-n", "3", "--model", f"openai:{server_url}", "--format", "json"]) == 0
    quiz = export.from_json(capsys.readouterr().out)
    assert len(quiz.questions) == 3 and quiz.metadata.extra["backend"] == "openai"


def test_a_server_that_cannot_start_says_why_and_leaves_no_log(tmp_path) -> None:
    from tutor.models import ModelError
    from tutor.models.local_server import LocalServer, missing_modules

    if missing := missing_modules():
        pytest.skip(f"llama-cpp-python's server needs {', '.join(missing)}")
    (tmp_path / "not.gguf").write_text("not a model")
    server = LocalServer(tmp_path / "not.gguf")
    with pytest.raises(ModelError, match=r"did not start:\n(.|\n)*not\.gguf"):
        server.start(timeout=60)
    assert not server.log.exists() and server.process is None
