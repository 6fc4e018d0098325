"""The ``ta`` command, in-process."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tutor.cli import main

SCHEMA = {
    "type": "object",
    "properties": {"term": {"type": "string", "maxLength": 30}, "level": {"enum": ["intro", "advanced"]}},
    "required": ["term", "level"],
}


def test_models(capsys) -> None:
    assert main(["models"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["default"].endswith(".gguf")


def test_generate_prints_one_valid_json_document(tmp_path, capsys, llama_model) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    assert main(["generate", "--schema", str(schema), "Name", "an", "ML", "term"]) == 0
    out = capsys.readouterr().out
    jsonschema.validate(json.loads(out), SCHEMA)
    assert out.count("\n") == 1


def test_errors_name_the_fix(tmp_path, capsys) -> None:
    assert main(["generate", "--schema", str(tmp_path / "missing.json"), "x"]) == 2
    assert "no schema file" in capsys.readouterr().err
    assert main(["ask", "--model", "/nowhere/model.gguf", "hi"]) == 2
    err = capsys.readouterr().err
    assert "no model at" in err and "Traceback" not in err


def test_ask_streams_an_answer(capsys, llama_model) -> None:
    assert main(["ask", "What", "is", "a", "neural", "network?"]) == 0
    assert len(capsys.readouterr().out.strip()) > 10


def _with_plugins(monkeypatch, *extra) -> None:
    """``ta`` with the installed subcommands plus ``extra`` entry points."""
    from importlib.metadata import entry_points

    import tutor.cli

    installed = list(entry_points(group=tutor.cli.GROUP))
    monkeypatch.setattr(tutor.cli, "entry_points", lambda group: [*installed, *extra])


def test_every_package_registers_through_an_entry_point() -> None:
    from importlib.metadata import entry_points

    from tutor.cli import GROUP

    names = {entry.name: entry.value for entry in entry_points(group=GROUP)}
    assert names["tutor"] == "tutor.commands:register" and names["serve"] == "app_serve:register"
    assert {"quiz", "bench", "finetune", "doctor", "kb"} <= set(names)


def test_a_broken_plugin_is_named_on_stderr_and_the_rest_still_work(monkeypatch, capsys) -> None:
    from importlib.metadata import EntryPoint

    _with_plugins(monkeypatch, EntryPoint("broken", "no_such_module_here:register", "ta.commands"))
    assert main(["models"]) == 0
    err = capsys.readouterr().err
    assert "skipped the 'broken' commands (no_such_module_here:register)" in err and "Traceback" not in err


def test_only_tutor_errors_become_one_line_a_bug_keeps_its_traceback(monkeypatch, capsys) -> None:
    import sys
    import types
    from importlib.metadata import EntryPoint

    from tutor.errors import InputError

    def fixable(args):
        raise InputError("pass a better value")

    def bug(args):
        raise ValueError("an internal bug")

    def register(sub):
        sub.add_parser("fixable").set_defaults(func=fixable)
        sub.add_parser("bug").set_defaults(func=bug)

    monkeypatch.setitem(sys.modules, "ta_test_plugin", types.SimpleNamespace(register=register))
    _with_plugins(monkeypatch, EntryPoint("test", "ta_test_plugin:register", "ta.commands"))
    assert main(["fixable"]) == 2
    assert capsys.readouterr().err == "ta fixable: error: pass a better value\n"
    with pytest.raises(ValueError, match="an internal bug"):
        main(["bug"])


def test_model_flags_include_threads_and_reach_the_backend(monkeypatch, capsys, tmp_path) -> None:
    import tutor.models.registry
    from tutor.models import ModelError

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    assert main(["ask", "--threads", "0", "hi"]) == 2
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err
    loaded = {}

    def fake_load(spec, **kwargs):
        loaded.update(kwargs, spec=spec)
        raise ModelError("stop here")

    monkeypatch.setattr(tutor.models.registry, "load_model", fake_load)
    assert main(["generate", "--schema", str(schema), "--threads", "2", "--backend", "llamacpp", "x"]) == 2
    assert loaded == {"spec": "default", "backend": "llamacpp", "adapter": None, "n_threads": 2}
