"""Experiment files and suites on FakeModel (logic only; the real smoke run is in test_bench_suite_real.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from benchmarks.run import read_predictions
from benchmarks.suite import (
    Experiment,
    ModelEntry,
    SuiteError,
    load_experiment,
    mcnemar,
    paired,
    parse,
    run_suite,
)
from tutor.cli import main
from tutor.models import FakeModel

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))


def _doc(tmp_path: Path, data_dir: Path, **changes) -> dict:
    doc = {
        "name": "tiny",
        "data": str(data_dir),
        "out": str(tmp_path / "suite"),
        "models": [{"name": "base"}, {"name": "tuned", "finetune": {"recipe": "r.yaml", "max_steps": 2}}],
        "tasks": [{"task": "arc_challenge", "sample": 6}, {"task": "truthfulqa_mc2", "limit": 4}],
        "modes": ["letter", "loglik"],
        "seeds": [0],
        "threads": 1,
        "batch_size": 2,  # several model calls a cell: an interruption can fall inside one
    }
    return {**doc, **changes}


class Counting(FakeModel):
    """A FakeModel that counts the questions it is asked, and can be told to crash after some model calls."""

    def __init__(self, name: str, log: list[tuple[str, int]], crash_after: int | None = None) -> None:
        super().__init__()
        self.name, self.log, self.crash_after = name, log, crash_after

    def _tick(self, n: int) -> None:
        if self.crash_after is not None and len(self.log) >= self.crash_after:
            raise KeyboardInterrupt("the machine went down")
        self.log.append((self.name, n))

    def _next_token_logprobs(self, prompts):
        self._tick(len(prompts))
        return super()._next_token_logprobs(prompts)

    def _loglikelihood_tokens(self, pairs):
        self._tick(len(pairs))
        # The tuned model prefers longer answers: it differs from the base, so the comparison has pairs to count.
        sign = 1.0 if self.name == "tuned" else -1.0
        return [sign * float(len(cont)) for _, cont in pairs]


def _fakes(log: list, crash_after: int | None = None, trained: list | None = None):
    def loader(entry: ModelEntry, adapter, threads):
        assert threads == 1
        if entry.name == "tuned":
            assert adapter and adapter.endswith("train/tuned/adapter"), adapter
        return Counting(entry.name, log, crash_after)

    def trainer(entry, out: Path, exp, progress):
        (trained if trained is not None else []).append(entry.name)
        (out / "adapter").mkdir(parents=True)
        (out / "run.json").write_text(json.dumps({"steps": entry.finetune.max_steps}))
        return out

    return loader, trainer


def test_a_suite_runs_every_cell_and_writes_table_plot_and_json(tmp_path: Path, data_dir: Path) -> None:
    exp = parse(_doc(tmp_path, data_dir))
    log: list = []
    trained: list = []
    loader, trainer = _fakes(log, trained=trained)
    results = run_suite(exp, loader=loader, trainer=trainer, progress=False)
    out = tmp_path / "suite"
    assert trained == ["tuned"] and results["training"] == {"tuned": {"steps": 2}}
    assert len(results["cells"]) == 8 and all(c["summary"]["complete"] for c in results["cells"])
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert names[0] == "base--arc_challenge--letter--seed0" and len(names) == 8
    table = (out / "table.md").read_text()
    assert "| model | ARC-Challenge | TruthfulQA MC2 | parse failures |" in table
    assert "| base (letter) | " in table and "| tuned (loglik) | " in table, "rows named after the experiment"
    assert "| truthfulqa_mc2 | loglik | tuned vs base | 4 |" in table and "paired normal" in table
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "results.json").read_text())
    assert saved["experiment"]["name"] == "tiny" and len(saved["comparisons"]) == 4
    cell = saved["cells"][0]
    harness = cell["lm_eval"]["results"]["arc_challenge"]
    assert harness["acc,none"] == pytest.approx(cell["summary"]["accuracy"], abs=1e-6)
    arc_loglik = next(c for c in saved["comparisons"] if c["task"] == "arc_challenge" and c["mode"] == "loglik")
    assert arc_loglik["test"] == "McNemar exact" and arc_loglik["n"] == 6


def test_an_interrupted_suite_resumes_and_no_cell_is_run_twice(tmp_path: Path, data_dir: Path) -> None:
    exp = parse(_doc(tmp_path, data_dir))
    first: list = []
    loader, trainer = _fakes(first, crash_after=5)  # mid-way through the base model's cells
    with pytest.raises(KeyboardInterrupt):
        run_suite(exp, loader=loader, trainer=trainer, progress=False)
    runs = tmp_path / "suite" / "runs"
    done_before = {p.parent.name for p in runs.glob("*/summary.json")}
    asked_before = {d.name: {r["id"] for r in read_predictions(d / "predictions.jsonl")} for d in runs.iterdir()}
    assert done_before == {"base--arc_challenge--letter--seed0"}, "one cell done"
    assert len(asked_before["base--arc_challenge--loglik--seed0"]) == 4, "the next one cut off after 2 batches of 2"
    second: list = []
    trained: list = []
    loader, trainer = _fakes(second, trained=trained)
    run_suite(exp, loader=loader, trainer=trainer, progress=False)
    # Every question of every cell was asked exactly once over the two runs.
    total_questions = 2 * 2 * (6 + 4)  # models x modes x questions
    asked_first = sum(len(ids) for ids in asked_before.values())
    assert asked_first == 6 + 4
    assert asked_first + _questions_asked(tmp_path, asked_before) == total_questions
    assert sum(name == "base" for name, _ in second) == 1 + 2 + 2, "base: the batches left in its cells, no more"
    assert trained == ["tuned"], "the fine-tuned model is trained once (the first run crashed before training it)"
    third: list = []
    loader, trainer = _fakes(third, crash_after=0)  # any model call would crash: nothing may be asked
    results = run_suite(exp, loader=loader, trainer=trainer, progress=False)
    assert third == [] and len(results["cells"]) == 8


def _questions_asked(tmp_path: Path, before: dict[str, set[str]]) -> int:
    """Questions in the finished cells that were not there after the interruption."""
    runs = tmp_path / "suite" / "runs"
    now = {d.name: {r["id"] for r in read_predictions(d / "predictions.jsonl")} for d in runs.iterdir()}
    for name, ids in before.items():
        assert ids <= now[name], f"{name} lost answers it had"
    assert all(json.loads((runs / n / "summary.json").read_text())["complete"] for n in now)
    return sum(len(ids - before.get(name, set())) for name, ids in now.items())


def test_the_second_run_asks_no_finished_cell_again(tmp_path: Path, data_dir: Path) -> None:
    exp = parse(_doc(tmp_path, data_dir, models=[{"name": "base"}], modes=["letter"]))
    log: list = []
    loader, trainer = _fakes(log)
    run_suite(exp, loader=loader, trainer=trainer, progress=False)
    assert sum(n for _, n in log) == 10
    summary = tmp_path / "suite" / "runs" / "base--truthfulqa_mc2--letter--seed0" / "summary.json"
    summary.unlink()  # that cell now reads as interrupted after its last answer
    log.clear()
    run_suite(exp, loader=loader, trainer=trainer, progress=False)
    assert log == [], "the cell resumed with nothing left to ask"
    assert summary.is_file()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tasks": [{"task": "arc_easy"}]}, r"cell base--arc_easy--letter--seed0: unknown task 'arc_easy'"),
        ({"modes": ["guess"]}, r"unknown mode 'guess'"),
        ({"modes": ["loglik+pride"]}, r"use it with --mode letter or letter_raw"),
        ({"tasks": [{"task": "arc_challenge", "sample": 0}]}, r"--sample must be at least 1"),
        ({"models": [{"name": "a", "modle": "x"}]}, r"models\[0\]: unknown key 'modle'"),
        ({"models": [{"name": "a"}, {"name": "a"}]}, r"model names must be distinct"),
        ({"models": [{"name": "a", "finetune": {"data": "x"}}]}, r"models\[0\].finetune: .*recipe"),
        ({"name": "a b"}, r"name 'a b': use letters"),
        ({"models": []}, r"missing 'models'"),
        ({"seeds": ["x"]}, r"seeds must be a list of ints"),
        ({"models": [{"name": "g", "export_of": "tuned", "export": "q4_k_m"}]}, r"must name an earlier model with"),
        ({"models": [{"name": "g", "export": "merged"}]}, r"export_of and export go together"),
        ({"seeds": 3}, None),
    ],
)
def test_experiment_mistakes_name_the_field(tmp_path: Path, data_dir: Path, changes: dict, message) -> None:
    doc = _doc(tmp_path, data_dir, **changes)
    if message is None:  # a scalar where a list goes is read as a list of one
        assert parse(doc).seeds == (3,)
        return
    with pytest.raises(SuiteError, match=message):
        parse(doc)


def test_paired_statistics() -> None:
    assert mcnemar(0, 5) == pytest.approx(2 / 32)
    assert mcnemar(1, 9) == pytest.approx(0.021484375)  # 2 * (1 + 10) / 1024
    assert mcnemar(3, 3) == 1.0 and mcnemar(0, 0) == 1.0
    base = [{"id": str(i), "score": float(i < 5)} for i in range(10)]
    other = [{"id": str(i), "score": 1.0} for i in range(10)] + [{"id": "extra", "score": 0.0}]
    stats = paired(base, other, binary=True)
    assert stats["n"] == 10 and stats["diff"] == 0.5 and (stats["gained"], stats["lost"]) == (5, 0)
    assert stats["p"] == pytest.approx(0.0625)
    mass = paired([{"id": "a", "score": 0.2}, {"id": "b", "score": 0.4}], [{"id": "a", "score": 0.3},
                  {"id": "b", "score": 0.7}], binary=False)  # fmt: skip
    assert mass["diff"] == pytest.approx(0.2) and mass["test"] == "paired normal"
    sd = math.sqrt(((0.1 - 0.2) ** 2 + (0.3 - 0.2) ** 2) / 1)
    assert mass["ci95"][1] - mass["diff"] == pytest.approx(1.959963984540054 * sd / math.sqrt(2))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_experiment_parses(path: Path, data_dir: Path) -> None:
    exp = load_experiment(path, data=str(data_dir))
    assert exp.models and exp.tasks and exp.cells()
    for model in exp.models:
        if model.finetune:
            assert (ROOT / model.finetune.recipe).is_file(), model.finetune.recipe
    smoke = exp.reduced(2, 2, tiny=True)
    assert all((t.sample or t.limit) == 2 for t in smoke.tasks)
    assert all(m.finetune.max_steps == 2 for m in smoke.models if m.finetune)


def test_original_table_is_the_issues_shape() -> None:
    doc = yaml.safe_load((ROOT / "experiments" / "original_table.yaml").read_text())
    exp = parse(doc)
    assert [m.name for m in exp.models] == ["baseline", "finetuned"]
    assert {m.backend for m in exp.models} == {"transformers"}, "same runtime: the difference is the adapter"
    assert exp.models[1].finetune.recipe == "finetune/configs/smollm2-135m-lora-cpu.yaml"
    assert [(t.task, t.sample) for t in exp.tasks] == [
        ("arc_challenge", 500), ("truthfulqa_mc1", None), ("truthfulqa_mc2", None)
    ]  # fmt: skip
    assert exp.modes == ("letter", "loglik")


def test_cli_suite_runs_and_rejects_bad_files(tmp_path, data_dir, capsys, monkeypatch) -> None:
    log: list = []
    loader, trainer = _fakes(log)
    monkeypatch.setattr("benchmarks.suite.load", loader)
    monkeypatch.setattr("benchmarks.suite.train", trainer)
    path = tmp_path / "exp.yaml"
    doc = _doc(tmp_path, data_dir, models=[{"name": "base"}], modes=["letter"])
    path.write_text(yaml.safe_dump(doc))
    assert main(["bench", "suite", str(path), "--questions", "2", "--threads", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| base (letter) | " in out and "(n=2)" in out
    assert (tmp_path / "suite-q2-stepsall" / "table.md").is_file(), "a reduced version writes beside the full one"
    (tmp_path / "suite-q2-stepsall" / "table.md").unlink()
    monkeypatch.setattr("benchmarks.suite.load", None)  # --report loads nothing
    assert main(["bench", "suite", str(path), "--questions", "2", "--report"]) == 0
    assert "| base (letter) | " in capsys.readouterr().out and (tmp_path / "suite-q2-stepsall" / "table.md").is_file()
    path.write_text("name: [unclosed")
    assert main(["bench", "suite", str(path)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    assert main(["bench", "suite", str(tmp_path / "none.yaml")]) == 2
    assert "no experiment file at" in capsys.readouterr().err


def test_each_seed_is_a_row_of_its_own(tmp_path: Path, data_dir: Path) -> None:
    exp = parse(_doc(tmp_path, data_dir, models=[{"name": "base"}], modes=["letter"], seeds=[0, 1]))
    loader, trainer = _fakes([])
    results = run_suite(exp, loader=loader, trainer=trainer, progress=False)
    assert "| base seed 0 (letter) | " in results["table"] and "| base seed 1 (letter) | " in results["table"]
    samples = {c["seed"]: c["summary"]["n"] for c in results["cells"] if c["task"] == "arc_challenge"}
    assert samples == {0: 6, 1: 6}


def test_experiment_defaults() -> None:
    exp = Experiment("x", (ModelEntry("m"),), ())
    assert exp.directory == Path("runs/suites/x") and exp.modes == ("letter",) and exp.seeds == (0,)


def test_an_exported_fine_tune_is_a_model_of_its_own(tmp_path: Path, data_dir: Path) -> None:
    models = [
        {"name": "tuned", "finetune": {"recipe": "r.yaml", "max_steps": 2}},
        {"name": "tuned-merged", "export_of": "tuned", "export": "merged"},
        {"name": "tuned-gguf", "export_of": "tuned", "export": "q8_0"},
    ]
    exp = parse(_doc(tmp_path, data_dir, models=models, modes=["loglik"]))
    with pytest.raises(SuiteError, match="export 'q3'"):
        parse(_doc(tmp_path, data_dir, models=[models[0], {**models[2], "export": "q3"}]))
    exported, loaded, trained = [], [], []

    def exporter(run_dir: Path, kind: str) -> Path:
        exported.append((run_dir.name, kind))
        return run_dir / ("merged" if kind == "merged" else f"gguf/model-{kind}.gguf")

    loader, trainer = _fakes([], trained=trained)

    def recording(entry, artifact, threads):
        loaded.append((entry.name, Path(artifact).relative_to(tmp_path / "suite" / "train").as_posix()))
        return loader(entry, artifact if entry.name == "tuned" else str(tmp_path / "train/tuned/adapter"), threads)

    results = run_suite(exp, loader=recording, trainer=trainer, exporter=exporter, progress=False)
    assert trained == ["tuned"], "trained once, exported twice"
    assert exported == [("tuned", "merged"), ("tuned", "q8_0")]
    assert loaded == [
        ("tuned", "tuned/adapter"),
        ("tuned-merged", "tuned/merged"),
        ("tuned-gguf", "tuned/gguf/model-q8_0.gguf"),
    ]
    config = json.loads((tmp_path / "suite/runs/tuned-gguf--arc_challenge--loglik--seed0/config.json").read_text())
    assert config["model_spec"].endswith("gguf/model-q8_0.gguf") and config["adapter"] is None
    assert {c["model"] for c in results["comparisons"]} == {"tuned-merged", "tuned-gguf"}
