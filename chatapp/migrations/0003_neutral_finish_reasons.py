"""Messages store the neutral finish reason; the upstream's own word moves to provider_extras.

The mapping is frozen here as it was when this migration was written (the live one is in
chatapp/providers/openai_compat.py and chatapp/providers/gemini/wire.py): a migration must mean
the same thing however the code changes later.
"""

from django.db import migrations

NEUTRAL = {"stop", "length", "safety", "content_filter", "recitation", "tool_calls", "other"}
RAW_TO_NEUTRAL = dict(
    pair.split(":")
    for pair in [
        "function_call:tool_calls",
        "STOP:stop",
        "MAX_TOKENS:length",
        "SAFETY:safety",
        "RECITATION:recitation",
        "IMAGE_RECITATION:recitation",
        "BLOCKLIST:safety",
        "PROHIBITED_CONTENT:safety",
        "SPII:safety",
        "IMAGE_SAFETY:safety",
        "IMAGE_PROHIBITED_CONTENT:safety",
        "MODEL_ARMOR:safety",
    ]
)


def forwards(apps, schema_editor):
    Message = apps.get_model("chatapp", "Message")
    rows = Message.objects.exclude(finish_reason__in=["", "stopped"]).only(
        "id", "finish_reason", "provider_extras"
    )
    batch = []
    for message in rows.iterator(chunk_size=500):
        raw = message.finish_reason
        extras = dict(message.provider_extras or {})
        extras.setdefault("finish_reason", raw)
        message.provider_extras = extras
        message.finish_reason = raw if raw in NEUTRAL else RAW_TO_NEUTRAL.get(raw, "other")
        batch.append(message)
        if len(batch) == 500:
            Message.objects.bulk_update(batch, ["finish_reason", "provider_extras"])
            batch = []
    Message.objects.bulk_update(batch, ["finish_reason", "provider_extras"])


def backwards(apps, schema_editor):
    Message = apps.get_model("chatapp", "Message")
    batch = []
    for message in Message.objects.filter(provider_extras__has_key="finish_reason").iterator():
        extras = dict(message.provider_extras)
        message.finish_reason = str(extras.pop("finish_reason"))[:32]
        message.provider_extras = extras
        batch.append(message)
    Message.objects.bulk_update(batch, ["finish_reason", "provider_extras"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("chatapp", "0002_attachments")]

    operations = [migrations.RunPython(forwards, backwards)]
