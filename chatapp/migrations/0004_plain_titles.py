"""Titles lose control and format characters (a bidirectional override reversed the sidebar
around it). The rule is frozen here as chatapp/conversations/titles.py had it."""

import unicodedata

from django.db import migrations


def plain(text):
    kept = "".join(
        ch for ch in text if ch == "\u200d" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return " ".join(kept.split()) or "New chat"


def forwards(apps, schema_editor):
    Conversation = apps.get_model("chatapp", "Conversation")
    changed = []
    for conversation in Conversation.objects.only("id", "title").iterator(chunk_size=500):
        title = plain(conversation.title) if conversation.title else conversation.title
        if title != conversation.title:
            conversation.title = title
            changed.append(conversation)
    Conversation.objects.bulk_update(changed, ["title"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("chatapp", "0003_neutral_finish_reasons")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
