"""Saved JSON schemas, through the views: listed when the disclosure opens, saved from the
JSON schema box under a name (checked as one sent would be), saved over, deleted; each
person's own and bounded."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from chatapp.conversations.services import SCHEMAS_PER_PERSON
from chatapp.models import SavedSchema
from chatapp.providers.structured import SCHEMA_MAX_CHARS

pytestmark = [pytest.mark.django_db]

PERSON = json.dumps(
    {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    indent=2,
)


def post(client: Client, name: str, data: dict, *args) -> str:
    response = client.post(reverse(name, args=args), data, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


def test_the_panel_offers_saved_schemas_but_reads_them_only_when_opened(user_client, user, aimlapi):
    SavedSchema.objects.create(owner=user, name="Invoice", text="{}")
    page = user_client.get(reverse("chat-home")).content.decode()
    assert "<summary>Saved schemas</summary>" in page
    assert 'hx-get="/schemas/"' in page
    assert 'hx-trigger="toggle once"' in page
    assert "Invoice" not in page
    assert 'aria-label="Use schema Invoice"' in user_client.get(reverse("schemas")).content.decode()


def test_a_schema_is_saved_listed_saved_over_and_deleted(user_client, user):
    said = post(
        user_client,
        "schema-save",
        {"schema_name": "  Person\u200b record ", "json_schema": PERSON},
    )
    schema = SavedSchema.objects.get(owner=user)
    assert schema.name == "Person record"  # plain text, trimmed
    assert schema.text == PERSON  # as written, indentation and all
    assert "Saved the schema “Person record”." in said
    assert 'aria-label="Use schema Person record"' in said

    listed = user_client.get(reverse("schemas")).content.decode()
    assert 'aria-label="Delete schema Person record"' in listed
    assert "&quot;required&quot;" in listed  # the text, escaped, for "Use"

    post(user_client, "schema-save", {"schema_name": "Person record", "json_schema": "{}"})
    assert SavedSchema.objects.get(owner=user).text == "{}"

    said = post(user_client, "schema-delete", {}, schema.id)
    assert "Deleted the schema “Person record”." in said
    assert not SavedSchema.objects.exists()
    assert "No saved schemas yet" in said


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("", PERSON, "Give the schema a name."),
        ("\u200b ", PERSON, "Give the schema a name."),
        ("Empty", "  ", "Write a schema in the JSON schema box first."),
        ("Broken", '{"type": ', "JSON schema is not valid JSON"),
        ("List", "[1]", "JSON schema must be a JSON object"),
        ("Wrong", '{"type": 5}', "JSON schema is not a valid JSON Schema at type"),
        ("Long", "{" + " " * SCHEMA_MAX_CHARS + "}", f"at most {SCHEMA_MAX_CHARS:,} characters"),
    ],
)
def test_a_schema_that_could_not_be_sent_is_not_saved_and_the_refusal_says_why(
    user_client, name, text, said
):
    answer = post(user_client, "schema-save", {"schema_name": name, "json_schema": text})
    assert said in answer
    assert not SavedSchema.objects.exists()


def test_a_refusal_keeps_the_name_typed(user_client):
    answer = post(user_client, "schema-save", {"schema_name": "Mine", "json_schema": "nope"})
    assert (
        'id="id_schema_name" name="schema_name" maxlength="80" autocomplete="off" value="Mine"'
        in answer
    )


def test_the_number_of_saved_schemas_is_bounded_and_the_limit_named(user_client, user):
    SavedSchema.objects.bulk_create(
        SavedSchema(owner=user, name=f"s{i}", text="{}") for i in range(SCHEMAS_PER_PERSON)
    )
    said = post(user_client, "schema-save", {"schema_name": "one more", "json_schema": "{}"})
    assert f"You have {SCHEMAS_PER_PERSON} saved schemas, the most one person can keep" in said
    post(user_client, "schema-save", {"schema_name": "s1", "json_schema": PERSON})  # saved over
    assert SavedSchema.objects.filter(owner=user).count() == SCHEMAS_PER_PERSON
    assert SavedSchema.objects.get(owner=user, name="s1").text == PERSON


def test_someone_elses_schemas_are_neither_listed_nor_deleted(user_client, other_user):
    theirs = SavedSchema.objects.create(owner=other_user, name="Theirs", text="{}")
    assert "Theirs" not in user_client.get(reverse("schemas")).content.decode()
    response = user_client.post(reverse("schema-delete", args=[theirs.id]))
    assert response.status_code == 404
    assert SavedSchema.objects.filter(pk=theirs.pk).exists()


def test_a_hostile_name_is_shown_as_text(user_client):
    said = post(
        user_client,
        "schema-save",
        {"schema_name": "<img src=x onerror=alert(1)>", "json_schema": "{}"},
    )
    assert "<img" not in said
    assert "&lt;img src=x onerror=alert(1)&gt;" in said


def test_the_schema_pages_need_a_signed_in_person(client):
    for name in ("schemas", "schema-save"):
        response = client.get(reverse(name)) if name == "schemas" else client.post(reverse(name))
        assert response.status_code in (302, 401, 403)
    assert not SavedSchema.objects.exists()
