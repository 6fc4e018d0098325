"""100 constrained generations per backend (5 schemas x 20 prompts), each output validated.

    .venv/bin/python -m benchmarks.validity [--backends llamacpp,transformers] [--prompts 20] [--threads N]
    .venv/bin/python -m benchmarks.validity --model openai:http://host:8000/v1     # a server someone runs
    .venv/bin/python -m benchmarks.validity --local-server                         # llama-cpp-python's, started here

Schemas cover nested objects, enums, arrays with min/max items, numbers and booleans. Every output is
parsed and validated with ``jsonschema`` here, independently of the model layer's own check; a
ConstraintViolation (the model layer refusing to hand on invalid text) counts as a failure too.
"""

from __future__ import annotations

import argparse
import json
import time

import jsonschema

TOPICS = [
    "gradient descent",
    "overfitting",
    "decision trees",
    "k-means clustering",
    "backpropagation",
    "dropout",
    "attention in transformers",
    "the bias-variance trade-off",
    "cross-validation",
    "word embeddings",
    "convolutional networks",
    "reinforcement learning",
    "support vector machines",
    "batch normalization",
    "precision and recall",
    "random forests",
    "learning rate schedules",
    "principal component analysis",
    "recurrent networks",
    "transfer learning",
]

SCHEMAS = {
    "question": {
        "type": "object",
        "properties": {
            "stem": {"type": "string", "maxLength": 200},
            "options": {"type": "array", "items": {"type": "string", "maxLength": 80}, "minItems": 4, "maxItems": 4},
            "answer": {"enum": ["A", "B", "C", "D"]},
            "difficulty": {"enum": ["easy", "medium", "hard"]},
        },
        "required": ["stem", "options", "answer", "difficulty"],
    },
    "concept_card": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "definition": {"type": "string"},
            "related": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
            "meta": {
                "type": "object",
                "properties": {"level": {"enum": ["intro", "intermediate", "advanced"]}, "year": {"type": "integer"}},
                "required": ["level", "year"],
            },
        },
        "required": ["name", "definition", "related", "meta"],
    },
    "grade": {
        "type": "object",
        "properties": {
            "correct": {"type": "boolean"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "feedback": {"type": "string", "maxLength": 300},
        },
        "required": ["correct", "score", "feedback"],
    },
    "study_plan": {
        "type": "object",
        "properties": {
            "topic": {"type": "string"},
            "steps": {
                "type": "array",
                "minItems": 2,
                "maxItems": 4,
                "items": {
                    "type": "object",
                    "properties": {"title": {"type": "string", "maxLength": 60}, "minutes": {"type": "integer"}},
                    "required": ["title", "minutes"],
                },
            },
        },
        "required": ["topic", "steps"],
    },
    "flashcards": {
        "type": "array",
        "minItems": 1,
        "maxItems": 3,
        "items": {
            "type": "object",
            "properties": {"front": {"type": "string", "maxLength": 100}, "back": {"type": "string", "maxLength": 200}},
            "required": ["front", "back"],
        },
    },
}


def prompts(n_prompts: int = len(TOPICS)) -> list[tuple[str, dict, str]]:
    """(schema name, schema, prompt) for each schema and each of the first ``n_prompts`` topics."""
    return [
        (name, schema, f"Write a {name.replace('_', ' ')} about {topic} as JSON.")
        for name, schema in SCHEMAS.items()
        for topic in TOPICS[:n_prompts]
    ]


def invalid_outputs(model, n_prompts: int = len(TOPICS)) -> list[str]:
    """Generate every prompt under its schema and validate it here; one line per invalid output (none: all valid)."""
    from tutor.models import ConstraintViolation

    invalid = []
    for name, schema, prompt in prompts(n_prompts):
        try:
            jsonschema.validate(json.loads(model.generate(prompt, schema, max_tokens=400)), schema)
        except (ConstraintViolation, json.JSONDecodeError, jsonschema.ValidationError) as exc:
            invalid.append(f"{name} / {prompt}: {type(exc).__name__}: {exc}"[:300])
    return invalid


def run(model, n_prompts: int) -> dict:
    """Generate and validate on ``model``; returns counts and timing."""
    start = time.perf_counter()
    invalid = invalid_outputs(model, n_prompts)
    total = len(prompts(n_prompts))
    for line in invalid:
        print(f"  INVALID {model.backend} {line}")
    return {
        "backend": model.backend,
        "model": model.name,
        "valid": total - len(invalid),
        "total": total,
        "seconds_per_generation": (time.perf_counter() - start) / total,
    }


def _models(args: argparse.Namespace):
    """The server started here (or None) and the (spec, options) of each model to check, from the flags."""
    from tutor.models import embedded
    from tutor.models.local_server import LocalServer

    if args.local_server:
        server = LocalServer(embedded.gguf_path(), threads=args.threads or 1, alias=embedded.NAME)
        return server, [(f"openai:{server.start()}", {})]
    if args.model:
        threads = {"n_threads": args.threads} if args.threads and not args.model.startswith("openai:") else {}
        return None, [(args.model, threads)]
    threads = {"n_threads": args.threads} if args.threads else {}
    return None, [("default", {"backend": b, **threads}) for b in args.backends.split(",")]


def main() -> None:
    """Print one JSON line per model."""
    from tutor.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="llamacpp,transformers", help="in-process backends on the default model")
    parser.add_argument("--model", help="one model spec instead (a path, an HF id, or openai:URL for a server)")
    parser.add_argument(
        "--local-server", action="store_true", help="start llama-cpp-python's server on the embedded GGUF and use it"
    )
    parser.add_argument("--prompts", type=int, default=20, help="topics per schema (at most 20)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (in-process, or the local server's)")
    args = parser.parse_args()
    server, specs = _models(args)
    try:
        for spec, options in specs:
            model = load_model(spec, **options)
            try:
                print(json.dumps(run(model, args.prompts)), flush=True)
            finally:
                model.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
