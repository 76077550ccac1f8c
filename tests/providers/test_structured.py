"""Structured output (providers/structured.py, params "response_format" and "json_schema"): a
schema checked before anything is sent, each wire's shape, and an answer checked against it."""

from __future__ import annotations

import re

import pytest

from chatapp.providers.params import wire_fields
from chatapp.providers.structured import SCHEMA_MAX_CHARS, check_answer, check_schema

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_openai_gets_one_response_format_object_built_from_both_parameters():
    assert wire_fields({"response_format": "json"}, "openai") == {
        "response_format": {"type": "json_object"}
    }
    assert wire_fields({"response_format": "json_schema", "json_schema": SCHEMA}, "openai") == {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SCHEMA},
        }
    }


def test_gemini_gets_a_json_mime_type_and_the_schema_as_response_json_schema():
    assert wire_fields({"response_format": "json_schema", "json_schema": SCHEMA}, "gemini") == {
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}
    }


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("{", "JSON schema is not valid JSON: Expecting property name enclosed in double quotes"),
        ("[]", "JSON schema must be a JSON object"),
        ('{"type": 5}', "JSON schema is not a valid JSON Schema at type: 5 is not valid"),
        ('{"properties": {"a": {"minimum": "x"}}}', "at properties/a/minimum"),
        (" " * (SCHEMA_MAX_CHARS + 1), "at most 20,000 characters (got 20,001)"),
        ("[" * 40 + "]" * 40, "JSON schema must be a JSON object"),
        ('{"a":' * 40 + "1" + "}" * 40, "nested at most 32 levels deep"),
    ],
)
def test_a_schema_that_is_not_one_is_refused_naming_what_is_wrong(raw, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        check_schema(raw)


def test_a_stored_schema_comes_back_as_it_was():
    assert check_schema(SCHEMA) == SCHEMA
    assert check_schema('{"type": "object"}') == {"type": "object"}


def test_an_answer_is_formatted_and_checked_against_its_schema():
    matching = check_answer('{"n":1}', SCHEMA)
    assert (matching.pretty, matching.valid, matching.schema) == ('{\n  "n": 1\n}', True, True)
    wrong = check_answer('{"n": "one"}', SCHEMA)
    assert not wrong.valid
    assert wrong.error == "Does not match the schema at n: 'one' is not of type 'integer'"
    missing = check_answer("{}", SCHEMA)
    assert missing.error == "Does not match the schema: 'n' is a required property"
    plain = check_answer('[1, "é"]', None)
    assert (plain.pretty, plain.valid, plain.schema) == ('[\n  1,\n  "é"\n]', True, False)
    broken = check_answer("Sure! {n: 1}", SCHEMA)
    assert broken.pretty == ""
    assert broken.error.startswith("Not valid JSON:")
