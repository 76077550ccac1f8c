# The "JSON output" checkbox became the "Response format" choice: a conversation's, a preset's
# and a pending or finished answer's frozen options say `response_format: "json"` instead of
# `json_output: true`, so JSON mode carries on (on a retry or a continue too).

from django.db import migrations


def _renamed(options):
    if not isinstance(options, dict) or "json_output" not in options:
        return None
    changed = {k: v for k, v in options.items() if k != "json_output"}
    if options["json_output"] is True and "response_format" not in changed:
        changed["response_format"] = "json"
    return changed


def forward(apps, schema_editor):
    for model, field in (
        ("Conversation", "settings"),
        ("Preset", "settings"),
        ("Message", "request_options"),
    ):
        Model = apps.get_model("chatapp", model)
        rows = Model.objects.filter(**{f"{field}__has_key": "json_output"}).only("pk", field)
        for row in rows.iterator():
            changed = _renamed(getattr(row, field))
            if changed is not None:
                Model.objects.filter(pk=row.pk).update(**{field: changed})


class Migration(migrations.Migration):
    dependencies = [("chatapp", "0015_answers_on_own_keys")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
