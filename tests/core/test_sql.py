"""Prepared statements (chatapp.core.sql): what they write is what the ORM would write, on the
database the suite runs on, and what they read back is what the ORM reads."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models
from django.utils.translation import gettext_lazy
from hypothesis import given
from hypothesis import strategies as st

from chatapp.conversations.models import Conversation, Message
from chatapp.core import sql

# The kinds core.sql passes as they are, read from core.sql itself.
_SKIPPED_KINDS = tuple(sql._AS_IS)


def _fields() -> list[models.Field[Any, Any]]:
    return [
        field
        for model in apps.get_app_config("chatapp").get_models()
        for field in model._meta.concrete_fields
    ]


class _Shouting(models.CharField):  # type: ignore[type-arg]
    """A subclass that prepares its values: never taken for a plain CharField."""

    def get_prep_value(self, value: Any) -> Any:
        return None if value is None else str(value).upper()


@given(text=st.text(), flag=st.booleans())
def test_a_value_passed_as_it_is_is_exactly_what_django_would_prepare(
    text: str, flag: bool
) -> None:
    for field in _fields():
        if not isinstance(field, _SKIPPED_KINDS):
            continue
        value = flag if isinstance(field, models.BooleanField) else text
        for candidate in (value, None):
            assert sql._save_value(field, candidate, connection) == field.get_db_prep_save(
                candidate, connection
            ), field


def test_values_of_another_type_and_subclasses_are_prepared_by_django() -> None:
    title = Conversation._meta.get_field("title")
    lazy = gettext_lazy("New chat")
    prepared = sql._save_value(title, lazy, connection)
    assert prepared == "New chat"
    assert type(prepared) is str
    assert sql._save_value(title, 12, connection) == "12"  # CharField.to_python's str()
    shouting = _Shouting(max_length=10)
    assert sql._save_value(shouting, "quiet", connection) == "QUIET"
    pinned = Conversation._meta.get_field("pinned")
    assert sql._save_value(pinned, 1, connection) is True  # BooleanField.to_python


@pytest.mark.django_db
def test_an_inserted_and_updated_turn_reads_back_as_the_orm_saved_it(user: Any) -> None:
    conversation = Conversation(owner=user, title="Titled", model="gemini-2.5-flash")
    sql.insert([conversation])
    question = Message(conversation=conversation, role=Message.Role.USER, content="Hi ☃")
    answer = Message(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        parent=question,
        status=Message.Status.PENDING,
    )
    sql.insert([question, answer])
    answer.content, answer.status, answer.own_key = "Hello", Message.Status.COMPLETE, True
    sql.update(answer, "content", "status", "own_key")
    stored = Message.objects.get(pk=answer.pk)
    assert (stored.content, stored.status, stored.own_key) == ("Hello", "complete", True)
    assert stored.parent_id == question.pk
    assert Message.objects.get(pk=question.pk).content == "Hi ☃"
    read = sql.Prepared(Message, "pk").first(answer.pk)
    assert read is not None
    for field in Message._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(stored, field.attname), field.name
