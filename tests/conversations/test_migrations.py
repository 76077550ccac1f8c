"""Data migrations on a database that already has conversations: rows written under the old
rules come out under the new ones, and nothing else changes."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = [pytest.mark.django_db(transaction=True)]

BEFORE = [("chatapp", "0002_attachments")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_database(django_user_model):
    """The schema as 0002 left it, with rows written then; the latest schema afterwards."""
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_finish_reasons_become_neutral_and_the_raw_word_moves_to_the_extras(old_database):
    User = old_database.get_model("auth", "User")
    Conversation = old_database.get_model("chatapp", "Conversation")
    Message = old_database.get_model("chatapp", "Message")
    owner = User.objects.create(username="old")
    conversation = Conversation.objects.create(owner=owner, route="gemini", model="m")
    raws = ["STOP", "MAX_TOKENS", "SPII", "stop", "function_call", "stopped", "", "NEW_ONE"]
    ids = [
        Message.objects.create(
            conversation=conversation,
            role="assistant",
            status="complete",
            finish_reason=raw,
            provider_extras={"gemini": {"parts": []}} if raw == "SPII" else {},
        ).id
        for raw in raws
    ]

    apps = migrate([("chatapp", "0003_neutral_finish_reasons")])
    rows = apps.get_model("chatapp", "Message").objects.in_bulk(ids)
    assert [rows[i].finish_reason for i in ids] == [
        "stop",
        "length",
        "safety",
        "stop",
        "tool_calls",
        "stopped",
        "",
        "other",
    ]
    assert [rows[i].provider_extras.get("finish_reason") for i in ids] == [
        "STOP",
        "MAX_TOKENS",
        "SPII",
        "stop",
        "function_call",
        None,
        None,
        "NEW_ONE",
    ]
    assert rows[ids[2]].provider_extras["gemini"] == {"parts": []}  # the rest is kept

    apps = migrate(BEFORE)  # and back again
    rows = apps.get_model("chatapp", "Message").objects.in_bulk(ids)
    assert [rows[i].finish_reason for i in ids] == raws


def test_titles_lose_control_and_format_characters(old_database):
    User = old_database.get_model("auth", "User")
    Conversation = old_database.get_model("chatapp", "Conversation")
    owner = User.objects.create(username="old")
    titles = ["\u202eexe.txt", "plain", "", "\u200b\u200b", "👨\u200d👩\u200d👧 family"]
    ids = [
        Conversation.objects.create(owner=owner, title=t, route="d", model="d").id for t in titles
    ]

    apps = migrate([("chatapp", "0004_plain_titles")])
    rows = apps.get_model("chatapp", "Conversation").objects.in_bulk(ids)
    assert [rows[i].title for i in ids] == [
        "exe.txt",
        "plain",
        "",
        "New chat",
        "👨\u200d👩\u200d👧 family",
    ]


def test_each_conversation_becomes_one_path_and_retried_answers_become_earlier_versions(
    old_database,
):
    """A copy of a populated database as 0006 left it: two conversations, one with a retried
    answer (superseded) and messages whose old parents were wrong or missing."""
    apps = migrate([("chatapp", "0006_presets")])
    User = apps.get_model("auth", "User")
    Conversation = apps.get_model("chatapp", "Conversation")
    Message = apps.get_model("chatapp", "Message")
    owner = User.objects.create(username="old")
    start = timezone.now() - timedelta(days=3)

    def add(conversation, role, content, seconds, **fields):
        fields.setdefault("status", "complete")
        return Message.objects.create(
            conversation=conversation,
            role=role,
            content=content,
            created_at=start + timedelta(seconds=seconds),
            **fields,
        )

    chat = Conversation.objects.create(owner=owner, route="aimlapi", model="m")
    q1 = add(chat, "user", "q1", 1)
    retried = add(chat, "assistant", "", 2, superseded=True, status="failed")
    a1 = add(chat, "assistant", "a1", 3)
    q2 = add(chat, "user", "q2", 4)  # its old parent left unset
    a2 = add(chat, "assistant", "a2", 5, parent=q1)  # and one that pointed wrong
    empty = Conversation.objects.create(owner=owner, route="aimlapi", model="m")
    other = Conversation.objects.create(owner=owner, route="aimlapi", model="m")
    lone = add(other, "user", "only", 1)

    apps = migrate([("chatapp", "0007_message_tree")])
    Conversation = apps.get_model("chatapp", "Conversation")
    Message = apps.get_model("chatapp", "Message")
    parents = dict(Message.objects.values_list("id", "parent_id"))
    assert parents == {
        q1.id: None,
        retried.id: q1.id,  # a version of a1 now: "1 / 2"
        a1.id: q1.id,
        q2.id: a1.id,
        a2.id: q2.id,
        lone.id: None,
    }
    leaves = dict(Conversation.objects.values_list("id", "current_leaf_id"))
    assert leaves == {chat.id: a2.id, empty.id: None, other.id: lone.id}
    assert Message.objects.count() == 6  # nothing lost

    apps = migrate([("chatapp", "0006_presets")])  # and back again
    Message = apps.get_model("chatapp", "Message")
    superseded = set(Message.objects.filter(superseded=True).values_list("id", flat=True))
    assert superseded == {retried.id}


def test_the_search_triggers_survive_every_migration_after_the_one_that_made_them():
    """Django rebuilds an SQLite table for some schema changes (a column with a default), and a
    rebuilt table has lost its triggers: search would silently stop indexing new messages."""
    search = importlib.import_module("chatapp.migrations.0010_search")
    made = {
        name
        for statement in search.FORWARD[connection.vendor]
        for name in re.findall(r"CREATE TRIGGER (\w+)", statement)
    }
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        found = {row[0] for row in cursor.fetchall()}
    assert made
    assert made <= found


def test_the_json_output_checkbox_becomes_the_json_response_format_everywhere_it_was_kept():
    apps = migrate([("chatapp", "0015_answers_on_own_keys")])
    User = apps.get_model("auth", "User")
    Conversation = apps.get_model("chatapp", "Conversation")
    Preset = apps.get_model("chatapp", "Preset")
    Message = apps.get_model("chatapp", "Message")
    owner = User.objects.create(username="old-json")
    chat = Conversation.objects.create(
        owner=owner, route="gemini", model="m", settings={"json_output": True, "top_k": 3}
    )
    off = Conversation.objects.create(owner=owner, route="gemini", model="m", settings={})
    preset = Preset.objects.create(owner=owner, name="p", settings={"json_output": True})
    answer = Message.objects.create(
        conversation=chat, role="assistant", request_options={"json_output": True}
    )
    try:
        apps = migrate([("chatapp", "0016_response_format")])
        Conversation = apps.get_model("chatapp", "Conversation")
        assert Conversation.objects.get(pk=chat.pk).settings == {
            "top_k": 3,
            "response_format": "json",
        }
        assert Conversation.objects.get(pk=off.pk).settings == {}
        assert apps.get_model("chatapp", "Preset").objects.get(pk=preset.pk).settings == {
            "response_format": "json"
        }
        assert apps.get_model("chatapp", "Message").objects.get(pk=answer.pk).request_options == {
            "response_format": "json"
        }
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
