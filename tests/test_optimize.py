"""ta optimize: metrics, the optimizer loop, save then load (same outputs), the model-mismatch warning, file errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from quizgen import QuizAgent
from tutor.explain import Tutor
from tutor.models import FakeModel
from tutor.optimize import (
    DATA,
    OptimizeConfig,
    ProgramFileError,
    ProgramMismatchWarning,
    load_program,
    optimize,
    quiz_metric,
    read_split,
    save_program,
    tutor_metric,
)

STEMS = (
    "What does the learning rate control during training?",
    "Why would a model perform worse on new data than on its training data?",
    "How is the depth of a decision tree usually limited?",
    "When should the number of clusters be increased in k-means?",
)


class Writer(FakeModel):
    """Plans two objectives; writes distinct good questions in turn; answers blind with the true option."""

    def __init__(self) -> None:
        super().__init__(responder=self.respond)
        self.count = 0

    def respond(self, messages, constraint) -> str:
        schema = json.dumps(constraint.schema) if constraint is not None else ""
        if '"plan"' in schema:
            return json.dumps({"plan": {"objectives": ["Explain the first idea well", "Compare the second idea"]}})
        self.count += 1
        return json.dumps(
            {
                "question": {
                    "stem": STEMS[self.count % len(STEMS)],
                    "options": ["Step size of updates", "Number of hidden layers", "Dataset size", "Example order"],
                    "answer": "A",
                    "explanation": "The learning rate scales every gradient step.",
                    "wrong_reasons": ["first wrong reason", "second wrong reason", "third wrong reason"],
                }
            }
        )

    def choose(self, prompts, choices, *, chat=True):
        text = json.dumps(prompts[0])
        letter = text[text.index("Step size of updates") - 3]
        self.choices.clear()
        self.choices.append(letter)
        return super().choose(prompts, choices, chat=chat)


def fake_quiz_model() -> FakeModel:
    return Writer()


def test_shipped_splits_hold_out_whole_lessons() -> None:
    """The fixed split: no lesson (hence no topic or question) is in two of train, dev and held-out."""
    for kind in ("quiz", "tutor"):
        lessons = {
            name: {json.loads(line)["lesson"] for line in (DATA / f"{kind}_{name}.jsonl").read_text().splitlines()}
            for name in ("train", "dev", "heldout")
        }
        assert not lessons["train"] & lessons["heldout"]
        assert not lessons["dev"] & lessons["heldout"]
        assert not lessons["train"] & lessons["dev"]
        assert read_split(kind, DATA / f"{kind}_heldout.jsonl")


def test_tutor_metric_is_the_reference_fact_score() -> None:
    import dspy

    example = read_split("tutor", DATA / "tutor_train.jsonl")[0]
    right = dspy.Prediction(answer=example.fact)
    wrong = dspy.Prediction(answer="I am not sure.")
    assert tutor_metric(example, right) == 1.0
    assert tutor_metric(example, wrong) == 0.0
    assert tutor_metric(example, wrong, trace=[]) is False
    gepa = tutor_metric(example, wrong, None, "respond", [])
    assert gepa.score == 0.0 and example.fact in gepa.feedback


def test_quiz_bootstrap_then_save_then_load_gives_the_same_quiz(tmp_path: Path) -> None:
    fake = fake_quiz_model()
    train = read_split("quiz", DATA / "quiz_train.jsonl")[:2]
    out = tmp_path / "quiz.json"
    compiled, info = optimize(OptimizeConfig("quiz", "bootstrap", demos=1), fake, train, out=out)
    assert info["demos"] == {"plan": 1, "write": 1, "blind": 1}, "every predictor got a bootstrapped demo"
    record = json.loads(out.read_text())
    assert record["model"] == "fake" and record["versions"]["dspy"] and record["program"] == "quiz"

    loaded = load_program(out, fake, "quiz")
    assert loaded.dump_state() == json.loads(json.dumps(compiled.dump_state(), default=lambda v: v.model_dump()))
    request = {"topic": "decision trees", "n": 2, "seed": 7, "grounded": False}
    asked, quizzes = [], []
    for program in (compiled, loaded):
        fake.count, fake.calls = 0, []  # the same script from its start
        quiz = program(**request).quiz
        quizzes.append([item.model_dump(exclude={"seconds"}) for item in quiz.questions])
        asked.append([m for m, _, _ in fake.calls])
    assert asked[0] == asked[1], "the loaded program asks the model exactly what the compiled one asked"
    assert quizzes[0] and quizzes[0] == quizzes[1]
    assert "Explain the first idea well" in json.dumps(asked[0][0][1:]), "the plan demo reaches the plan prompt"


def test_quiz_metric_fails_a_bad_quiz() -> None:
    import dspy

    from tests.quizgen_fixtures import make_quiz

    example = read_split("quiz", DATA / "quiz_train.jsonl")[0]
    good = dspy.Prediction(quiz=make_quiz(2))  # one verified question of the two asked for
    assert 0 < quiz_metric(example, good) < 1
    assert quiz_metric(example, good, trace=[]) in (True, False)
    assert "verification" in quiz_metric(example, good, None, "write", []).feedback


def test_loading_on_another_model_warns(tmp_path: Path) -> None:
    program = Tutor(FakeModel(["x"]))
    out = save_program(program, "tutor", FakeModel(["x"]), tmp_path / "t.json")
    other = FakeModel(["y"])
    other.name = "another-model"
    with pytest.warns(ProgramMismatchWarning, match="another-model"):
        load_program(out, other, "tutor")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_program(out, FakeModel(["z"]), "tutor")  # the same model: no warning


@pytest.mark.parametrize(
    ("content", "kind", "message"),
    [
        (None, "quiz", "no program file"),
        ("not json", "quiz", "not a program file"),
        ('{"a": 1}', "quiz", "not a program file"),
        ('{"program": "tutor", "state": {}}', "quiz", "holds a tutor program"),
    ],
)
def test_bad_program_files_say_what_to_pass(tmp_path: Path, content, kind, message) -> None:
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ProgramFileError, match=message):
        load_program(path, FakeModel(["x"]), kind)


def test_ta_ask_and_quiz_refuse_a_bad_program_before_loading_the_model(tmp_path: Path, capsys) -> None:
    from tutor.cli import main

    missing = tmp_path / "missing.json"
    assert main(["ask", "What is overfitting?", "--program", str(missing), "--model", "/nonexistent.gguf"]) == 2
    assert "no program file" in capsys.readouterr().err
    assert main(["quiz", "overfitting", "--ungrounded", "--program", str(missing), "--model", "/x.gguf"]) == 2
    assert "no program file" in capsys.readouterr().err


def test_quiz_agent_copy_shares_the_model_and_not_the_demos() -> None:
    import copy

    agent = QuizAgent(FakeModel(["x"]))
    twin = copy.deepcopy(agent)
    twin.write.demos.append({"topic": "t"})
    assert agent.write.demos == [] and twin.model is agent.model and twin.lm is agent.lm
    assert twin.grounded._blind.__self__ is twin, "the copy's grounded agent answers blind with the copy's predictor"


@pytest.mark.real_model
def test_tutor_program_save_then_load_answers_the_same_on_the_real_model(llama_model, tmp_path: Path) -> None:
    """Labeled demos (the reference facts) saved, loaded into a new Tutor: the same prompt and answer, seed fixed."""
    train = read_split("tutor", DATA / "tutor_train.jsonl")
    tutor = Tutor(llama_model)
    tutor.respond.demos = [train[0], train[2]]
    path = save_program(tutor, "tutor", llama_model, tmp_path / "tutor.json")
    loaded = load_program(path, llama_model, "tutor")
    question = "What is cross-validation?"
    assert loaded.messages(question) == tutor.messages(question)
    assert train[0].fact in json.dumps(loaded.messages(question)), "the demo reached the prompt"
    config = {"seed": 3, "temperature": 0.7, "max_tokens": 48}
    # llama.cpp's first decode of a prompt (no cached prefix) can differ in the last bits from a later one, enough
    # to change a sampled token: warm the prompt first so both programs meet the same cache state.
    tutor(question=question, config=config)
    assert loaded(question=question, config=config).answer == tutor(question=question, config=config).answer


def test_an_interrupted_optimisation_resumes_from_its_trials(tmp_path: Path) -> None:
    """The second run of the same optimisation replays every model call from the trials directory."""
    import dspy

    train = read_split("quiz", DATA / "quiz_train.jsonl")[:2]
    config = OptimizeConfig("quiz", "bootstrap", demos=1, trials=tmp_path / "trials")
    before = dspy.cache
    first_model = fake_quiz_model()
    first, _ = optimize(config, first_model, train)
    assert first_model.calls, "the first run asks the model"
    second_model = fake_quiz_model()
    second, _ = optimize(config, second_model, train)
    assert second_model.calls == [] and second_model.count == 0, "the rerun asks the model nothing"
    assert json.dumps(second.dump_state(), default=str) == json.dumps(first.dump_state(), default=str)
    assert dspy.cache is before, "DSPy's global cache is restored"
    other = fake_quiz_model()
    other.name = "another-model"
    with pytest.raises(Exception, match="holds the trials of 'fake'"):
        optimize(config, other, train)


def test_ta_optimize_checks_its_files_before_loading_the_model(tmp_path: Path, capsys) -> None:
    from tutor.cli import main

    args = ["optimize", "tutor", "--out", str(tmp_path / "p.json"), "--model", "/nonexistent.gguf"]
    assert main([*args, "--train", str(tmp_path / "missing.jsonl")]) == 2
    assert "no split file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is a tree?"}\n')
    assert main([*args, "--train", str(bad)]) == 2
    assert "no 'question' or keywords" in capsys.readouterr().err


def _scripted_tutor_model() -> FakeModel:
    """Answers a tutor question with a fact for every other call; any JSON-shaped step (proposals) with advice."""
    import itertools

    replies = itertools.cycle(["Overfitting means the model memorises noise in its training examples.", "Unsure."])

    def respond(messages, constraint) -> str:
        if constraint is not None:
            return json.dumps(
                {k: "Answer with the course's definition." for k in constraint.schema.get("properties", {})}
            )
        return next(replies)

    return FakeModel(responder=respond)


@pytest.mark.parametrize("optimizer", ["gepa", "mipro"])
def test_gepa_and_mipro_run_on_the_tutor_and_save(optimizer: str, tmp_path: Path) -> None:
    """The wiring of the two instruction optimizers, end to end on a scripted model (their quality is not shown)."""
    if optimizer == "mipro":
        pytest.importorskip("optuna", reason="MIPROv2 needs optuna (pip install optuna)")
    train = read_split("tutor", DATA / "tutor_train.jsonl")[:4]
    dev = read_split("tutor", DATA / "tutor_dev.jsonl")[:2]
    out = tmp_path / "tutor.json"
    config = OptimizeConfig("tutor", optimizer, demos=1, trials=tmp_path / "trials")
    _, info = optimize(config, _scripted_tutor_model(), train, dev, out)
    record = json.loads(out.read_text())
    assert record["optimizer"] == optimizer and "dev_after" in info
    assert record["state"]["respond"]["signature"]["instructions"]
    if optimizer == "gepa":
        assert (tmp_path / "trials" / "gepa").is_dir(), "GEPA keeps its state where a rerun resumes it"


def test_load_into_puts_each_program_in_its_place(tmp_path: Path) -> None:
    """``ta serve --program A --program B``: each file goes to the program of its kind."""
    from tutor.optimize import load_into

    fake = FakeModel(["x"])
    tutor = Tutor(fake)
    tutor.respond.demos = read_split("tutor", DATA / "tutor_train.jsonl")[:1]
    path = save_program(tutor, "tutor", fake, tmp_path / "t.json")
    served_tutor, served_quiz = Tutor(fake), QuizAgent(fake)
    load_into([path], served_tutor, served_quiz)
    assert served_tutor.respond.demos[0]["question"] == tutor.respond.demos[0].question
    assert served_quiz.write.demos == []
    with pytest.raises(ProgramFileError, match="not served here"):
        load_into([path], None, served_quiz)
