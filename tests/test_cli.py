"""The ``ta`` command, in-process."""

from __future__ import annotations

import json

import jsonschema

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
