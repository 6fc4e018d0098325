"""100 constrained generations per backend (5 schemas x 20 prompts), each output validated.

    .venv/bin/python -m benchmarks.validity [--backends llamacpp,transformers] [--prompts 20]

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


def run(backend: str, n_prompts: int) -> dict:
    """Generate and validate; returns counts and timing."""
    from tutor.models import ConstraintViolation, load_model

    model = load_model("default", backend=backend)
    valid = failed = 0
    start = time.perf_counter()
    for name, schema in SCHEMAS.items():
        for topic in TOPICS[:n_prompts]:
            prompt = f"Write a {name.replace('_', ' ')} about {topic} as JSON."
            try:
                jsonschema.validate(json.loads(model.generate(prompt, schema, max_tokens=400)), schema)
                valid += 1
            except (ConstraintViolation, json.JSONDecodeError, jsonschema.ValidationError) as exc:
                failed += 1
                print(f"  INVALID {backend} {name} / {topic}: {exc}")
    seconds = time.perf_counter() - start
    model.close()
    return {
        "backend": backend,
        "valid": valid,
        "total": valid + failed,
        "seconds_per_generation": seconds / (valid + failed),
    }


def main() -> None:
    """Print one JSON line per backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="llamacpp,transformers")
    parser.add_argument("--prompts", type=int, default=20)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        print(json.dumps(run(backend, args.prompts)), flush=True)


if __name__ == "__main__":
    main()
