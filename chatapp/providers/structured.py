"""Structured output: a person's JSON Schema checked before anything is sent, and an answer
checked against it once it is written. `jsonschema` does the checking (Draft 2020-12, the
dialect Gemini's `responseJsonSchema` and OpenAI's `json_schema` read)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

SCHEMA_MAX_CHARS = 20_000
SCHEMA_MAX_DEPTH = 32


def check_schema(value: Any, *, label: str = "JSON schema") -> dict[str, Any]:
    """The schema as an object, from the panel's text or a stored object. Raises ValueError
    naming what is wrong: not JSON (with its line and column), not an object, too long or too
    deep, or not a valid JSON Schema (with where)."""
    if isinstance(value, Mapping):
        schema: Any = dict(value)
        text = json.dumps(schema)
    else:
        text = str(value)
        if len(text) > SCHEMA_MAX_CHARS:
            raise ValueError(
                f"{label}: at most {SCHEMA_MAX_CHARS:,} characters (got {len(text):,})."
            )
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{label} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
    if len(text) > SCHEMA_MAX_CHARS:
        raise ValueError(f"{label}: at most {SCHEMA_MAX_CHARS:,} characters (got {len(text):,}).")
    if not isinstance(schema, dict):
        raise ValueError(f'{label} must be a JSON object, such as {{"type": "object"}}.')
    if _depth(schema) > SCHEMA_MAX_DEPTH:
        raise ValueError(f"{label}: nested at most {SCHEMA_MAX_DEPTH} levels deep.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        at = f" at {where}" if where else ""
        raise ValueError(f"{label} is not a valid JSON Schema{at}: {exc.message}") from None
    return schema


def _depth(value: Any, level: int = 0) -> int:
    if level > SCHEMA_MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """An answer asked for as JSON: formatted, and whether it is JSON and matches the schema."""

    pretty: str  # indented; "" when the answer is not JSON
    error: str  # why it is not JSON or does not match; "" when it does
    schema: bool  # a schema was asked for

    @property
    def valid(self) -> bool:
        return not self.error


def check_answer(text: str, schema: Mapping[str, Any] | None) -> JsonAnswer:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonAnswer(
            "", f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).", bool(schema)
        )
    pretty = json.dumps(document, indent=2, ensure_ascii=False)
    if not schema:
        return JsonAnswer(pretty, "", False)
    try:
        validator = Draft202012Validator(dict(schema))
        problem = best_match(validator.iter_errors(document))
    except Exception:  # a schema a newer jsonschema reads otherwise: say so, do not fail
        return JsonAnswer(pretty, "The schema could not be applied to this answer.", True)
    if problem is None:
        return JsonAnswer(pretty, "", True)
    where = "/".join(str(part) for part in problem.absolute_path)
    at = f" at {where}" if where else ""
    return JsonAnswer(pretty, f"Does not match the schema{at}: {problem.message}", True)
