"""Validate chat-completion requests and responses against OpenAI's published schemas.

The schemas come from `schemas/openai-chat.json`, an excerpt of OpenAI's OpenAPI 3.1 spec
(MIT, see `schemas/LICENSE`; regenerate with `schemas/extract.py`). OpenAPI's `nullable: true`
means nothing to JSON Schema, so a chunk with `"finish_reason": null` would be rejected;
each such schema is rewritten on load to also accept null. Unknown keys stay allowed, as in the
spec: AI/ML API adds `meta`, `extra_content` and the fake adds `x_ts`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "openai-chat.json"
_URI = "urn:openai-chat"


def accept_null_where_nullable(node: Any) -> Any:
    """Rewrite OpenAPI's `nullable: true` as `anyOf: [<schema>, {"type": "null"}]`, recursively.

    Wrapping (rather than adding "null" to `type`) also covers schemas with `enum`, `$ref` or
    composition keywords, whose constraints would otherwise still reject null.
    """
    if isinstance(node, list):
        return [accept_null_where_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: accept_null_where_nullable(value) for key, value in node.items()}
    if rewritten.get("nullable") is True:
        del rewritten["nullable"]
        return {"anyOf": [rewritten, {"type": "null"}]}
    return rewritten


@cache
def _registry() -> Registry:
    document = accept_null_where_nullable(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(_URI, resource)


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for `#/components/schemas/<schema_name>` of the excerpt."""
    return Draft202012Validator(
        {"$ref": f"{_URI}#/components/schemas/{schema_name}"}, registry=_registry()
    )


def _describe(error: ValidationError) -> str:
    where = error.json_path
    # For oneOf/anyOf the top error says only "is not valid under any of the given schemas";
    # the closest branch's own complaint is what tells a reader what to fix.
    # The `{"type": "null"}` branch added for `nullable` is never the informative one.
    branches = [e for e in error.context or () if e.validator_value != "null"]
    context = best_match(branches) if branches else None
    reason = error.message if context is None else f"{error.message}; closest: {context.message}"
    if len(reason) > 600:
        reason = reason[:600] + "…"
    return f"{where}: {reason}"


def validate(schema_name: str, instance: Any, *, what: str = "") -> None:
    """Raise AssertionError naming every violation of `schema_name` (at most five shown)."""
    errors = sorted(validator(schema_name).iter_errors(instance), key=lambda e: e.json_path)
    if not errors:
        return
    lines = [_describe(error) for error in errors[:5]]
    if len(errors) > 5:
        lines.append(f"... and {len(errors) - 5} more")
    shown = json.dumps(instance, ensure_ascii=False, default=str)
    if len(shown) > 800:
        shown = shown[:800] + "…"
    label = what or schema_name
    raise AssertionError(
        f"{label} does not match OpenAI's {schema_name}:\n  "
        + "\n  ".join(lines)
        + f"\ninstance: {shown}"
    )


def validate_chat_request(body: dict[str, Any]) -> None:
    validate("CreateChatCompletionRequest", body, what="chat request body")


def validate_stream_chunk(chunk: dict[str, Any]) -> None:
    validate("CreateChatCompletionStreamResponse", chunk, what="stream chunk")


def validate_chat_response(body: dict[str, Any]) -> None:
    validate("CreateChatCompletionResponse", body, what="chat response")
