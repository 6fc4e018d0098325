"""Output types: what a caller may ask a model's text to satisfy, normalised to three kinds.

A caller passes a pydantic model, a JSON schema (a dict, or a path to a ``.json`` file), a list of
choices, or a :class:`Regex`. Backends never see those forms: :func:`to_constraint` turns each into
a frozen :class:`Json`, :class:`Choices` or :class:`Pattern`, which is hashable (so a compiled grammar
can be cached per model and constraint) and can check a finished text (:meth:`Constraint.check`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tutor.errors import TutorError

# Small models loop on JSON whitespace ("\n\n\n..." until the token limit) when it is left free.
# One optional space after a separator is enough for readable JSON and gives them no room to loop.
WHITESPACE_PATTERN = r"[ ]?"


class OutputTypeError(TutorError, ValueError):
    """An output type that cannot be turned into a constraint; the message lists the accepted forms."""


class ConstraintViolation(RuntimeError):  # noqa: N818 - a violation, not a bug in our code
    """A model's finished text does not satisfy its constraint (e.g. cut off by ``max_tokens``)."""


@dataclass(frozen=True)
class Regex:
    """A regular expression the whole output must match (``re.fullmatch``)."""

    pattern: str

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise OutputTypeError(f"invalid regex {self.pattern!r}: {exc}") from exc


class Constraint:
    """Base of the normalised output types."""

    key: str

    def check(self, text: str) -> None:
        """Raise :class:`ConstraintViolation` if ``text`` does not satisfy the constraint."""
        raise NotImplementedError


@dataclass(frozen=True)
class Json(Constraint):
    """Output must be one JSON document valid against ``schema`` (stored as canonical JSON text)."""

    schema_text: str
    model: type[BaseModel] | None = field(default=None, compare=False, hash=False)

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON schema as a dict."""
        return json.loads(self.schema_text)

    @property
    def key(self) -> str:  # type: ignore[override]
        """Cache key: the schema without its annotations (titles and descriptions shape no output)."""
        return "json:" + _canonical(_strip_annotations(self.schema))

    def bounded(self, max_tokens: int) -> Json:
        """The same schema with every unbounded string given a ``maxLength`` that fits ``max_tokens``.

        A small model can ramble inside a JSON string, or list items forever, until the token limit cuts
        the document off, invalid. Arrays without ``maxItems`` get :data:`ARRAY_CAP`; a string that must
        close within N characters closes within N tokens (a token is at least one character), so
        sharing the budget among the schema's strings guarantees a complete document. Texts valid under
        the bounded schema are valid under the original.
        """
        schema = self.schema
        _bound_arrays(schema)
        slots = _string_slots(schema)
        if not slots:
            return self if schema == self.schema else Json(_canonical(schema), model=self.model)
        cap = max(8, (max_tokens - 32) // slots - 4)  # 4: the quotes and separator around each string
        need = _longest_min_length(schema)
        if need > cap:  # the grammar could never close the document within the budget
            raise OutputTypeError(
                f"a string of the schema must hold at least {need} characters, but max_tokens={max_tokens} leaves "
                f"room for {cap} in each of its {slots} unbounded strings: raise max_tokens to about "
                f"{(need + 4) * slots + 32}, or give that string a maxLength"
            )
        _bound_strings(schema, cap)
        return Json(_canonical(schema), model=self.model)

    def check(self, text: str) -> None:
        """Parse ``text`` and validate it against the schema."""
        import jsonschema

        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConstraintViolation(f"output is not JSON ({exc}): {text[:200]!r}") from exc
        try:
            jsonschema.validate(value, self.schema)
        except jsonschema.ValidationError as exc:
            raise ConstraintViolation(f"output does not match the schema: {exc.message}") from exc


@dataclass(frozen=True)
class Choices(Constraint):
    """Output must be exactly one of ``options``."""

    options: tuple[str, ...]

    @property
    def key(self) -> str:  # type: ignore[override]
        """Cache key: the options."""
        return "choices:" + json.dumps(self.options)

    def check(self, text: str) -> None:
        """Require ``text`` to be one of the options."""
        if text not in self.options:
            raise ConstraintViolation(f"output {text!r} is not one of {list(self.options)}")


@dataclass(frozen=True)
class Pattern(Constraint):
    """Output must fully match ``pattern``."""

    pattern: str

    @property
    def key(self) -> str:  # type: ignore[override]
        """Cache key: the pattern."""
        return "regex:" + self.pattern

    def check(self, text: str) -> None:
        """Require ``re.fullmatch``."""
        if re.fullmatch(self.pattern, text, flags=re.DOTALL) is None:
            raise ConstraintViolation(f"output {text[:200]!r} does not match /{self.pattern}/")


OutputType = type[BaseModel] | dict[str, Any] | Path | list[str] | tuple[str, ...] | Regex | Constraint | None


def to_constraint(output_type: OutputType) -> Constraint | None:
    """Normalise any accepted output type; ``None`` means free text.

    Raises:
        OutputTypeError: for anything else, saying which forms are accepted.
    """
    if output_type is None or isinstance(output_type, Constraint):
        return output_type
    if isinstance(output_type, Regex):
        return Pattern(output_type.pattern)
    if isinstance(output_type, type) and issubclass(output_type, BaseModel):
        return Json(_canonical(output_type.model_json_schema()), model=output_type)
    if isinstance(output_type, dict):
        return Json(_canonical(_check_schema(output_type)))
    if isinstance(output_type, Path):
        return Json(_canonical(load_schema_file(output_type)))
    if isinstance(output_type, list | tuple):
        options = tuple(output_type)
        if not options or not all(isinstance(o, str) and o for o in options):
            raise OutputTypeError(f"choices must be a non-empty list of non-empty strings, got {output_type!r}")
        if len(set(options)) != len(options):
            raise OutputTypeError(f"choices must be distinct, got {list(options)}")
        return Choices(options)
    raise OutputTypeError(
        f"unsupported output type {output_type!r}: pass a pydantic model, a JSON schema dict, a pathlib.Path "
        "to a .json schema file, a list of choices, or tutor.Regex('...')"
    )


def load_schema_file(path: Path) -> dict[str, Any]:
    """Read and check a JSON schema file, with errors that name the file."""
    if not path.is_file():
        raise OutputTypeError(f"no schema file at {path}: pass the path of a JSON schema (.json) file")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputTypeError(f"{path} is not a JSON file ({exc}); a schema file holds one JSON object") from exc
    if not isinstance(schema, dict):
        raise OutputTypeError(f"{path} holds a {type(schema).__name__}, not a JSON schema object")
    return _check_schema(schema, where=str(path))


def _check_schema(schema: dict[str, Any], where: str = "schema") -> dict[str, Any]:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise OutputTypeError(f"{where} is not a valid JSON schema: {exc.message}") from exc
    return schema


def _strip_annotations(node: Any) -> Any:
    if isinstance(node, list):
        return [_strip_annotations(n) for n in node]
    if not isinstance(node, dict):
        return node
    # A string-valued "title" is an annotation; a dict-valued one is a property named "title".
    return {k: _strip_annotations(v) for k, v in node.items() if not (k in _ANNOTATIONS and isinstance(v, str))}


_ANNOTATIONS = ("title", "description", "$schema", "$comment")


ARRAY_CAP = 8  # items in an array whose schema sets no maxItems


def _bound_arrays(node: Any) -> None:
    if isinstance(node, list):
        for n in node:
            _bound_arrays(n)
    elif isinstance(node, dict):
        if node.get("type") == "array" and "maxItems" not in node:
            node["maxItems"] = max(ARRAY_CAP, int(node.get("minItems", 0)))
        for value in node.values():
            _bound_arrays(value)


def _is_free_string(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    return is_string and not any(k in node for k in ("maxLength", "enum", "const", "pattern", "format"))


def _string_slots(node: Any, repeat: int = 1) -> int:
    """How many unbounded strings a document may hold (arrays count their maxItems, else 5)."""
    if isinstance(node, list):
        return sum(_string_slots(n, repeat) for n in node)
    if not isinstance(node, dict):
        return 0
    count = repeat if _is_free_string(node) else 0
    for key, value in node.items():
        inner = repeat * min(int(node.get("maxItems", 5)), 20) if key == "items" else repeat
        count += _string_slots(value, inner)
    return count


def _longest_min_length(node: Any) -> int:
    """The largest ``minLength`` of an unbounded string in ``node`` (0: none)."""
    if isinstance(node, list):
        return max((_longest_min_length(n) for n in node), default=0)
    if not isinstance(node, dict):
        return 0
    own = int(node.get("minLength", 0)) if _is_free_string(node) and _is_int(node.get("minLength", 0)) else 0
    return max([own, *(_longest_min_length(v) for v in node.values())])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound_strings(node: Any, cap: int) -> None:
    if isinstance(node, list):
        for n in node:
            _bound_strings(n, cap)
    elif isinstance(node, dict):
        if _is_free_string(node):
            node["maxLength"] = cap
        for value in node.values():
            _bound_strings(value, cap)


def _canonical(schema: dict[str, Any]) -> str:
    # Keys keep their order: properties are generated in schema order (reasoning before answer).
    return json.dumps(schema, separators=(",", ":"))
