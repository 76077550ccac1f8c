"""Every conversation becomes a tree (docs/ARCHITECTURE.md, "The message tree").

Before, a conversation was a list in time order: the visible thread was every message not
`superseded`, and a retried answer stayed behind as a superseded row. Now each message's
`parent` is the one before it on its branch and the conversation remembers its
`current_leaf`. An existing conversation becomes one path, its visible messages in their old
order; each retried answer becomes an earlier version (a sibling) of the one that replaced
it, so nothing is lost and "1 / 2" now shows it. Backwards, whatever is off the current path
is superseded again.
"""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 2000


def to_tree(apps, schema_editor):
    Conversation = apps.get_model("chatapp", "Conversation")
    Message = apps.get_model("chatapp", "Message")
    for conversation_id in Conversation.objects.values_list("id", flat=True).iterator():
        rows = Message.objects.filter(conversation_id=conversation_id).order_by("created_at", "id")
        changed = []
        last_visible = None
        for message in rows.only("id", "parent_id", "superseded").iterator():
            # A superseded answer followed the same message as its replacement: the last
            # visible one before it.
            parent_id = last_visible
            if not message.superseded:
                last_visible = message.id
            if message.parent_id != parent_id:
                message.parent_id = parent_id
                changed.append(message)
        Message.objects.bulk_update(changed, ["parent_id"], batch_size=BATCH)
        Conversation.objects.filter(pk=conversation_id).update(current_leaf_id=last_visible)
    _check_now(schema_editor)


def _check_now(schema_editor) -> None:
    """Check the foreign keys written above now, not at commit: PostgreSQL refuses to alter a
    table (removing `superseded`, next) while their checks are pending."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def to_list(apps, schema_editor):
    Conversation = apps.get_model("chatapp", "Conversation")
    Message = apps.get_model("chatapp", "Message")
    for conversation in Conversation.objects.only("id", "current_leaf_id").iterator():
        parents = dict(
            Message.objects.filter(conversation_id=conversation.id).values_list("id", "parent_id")
        )
        on_path = set()
        node = conversation.current_leaf_id
        while node is not None and node not in on_path:
            on_path.add(node)
            node = parents.get(node)
        Message.objects.filter(conversation_id=conversation.id).update(superseded=True)
        path = list(on_path)
        for start in range(0, len(path), BATCH):
            Message.objects.filter(pk__in=path[start : start + BATCH]).update(superseded=False)
    _check_now(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("chatapp", "0006_presets"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="current_leaf",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="chatapp.message",
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="children",
                to="chatapp.message",
            ),
        ),
        migrations.RunPython(to_tree, to_list, elidable=False),
        migrations.RemoveField(
            model_name="message",
            name="superseded",
        ),
    ]
