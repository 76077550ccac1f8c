# Whether an answer was written with the person's own API key (not counted against their
# budget). Nullable without a default, so SQLite adds the column in place and keeps the
# search triggers of 0010.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chatapp", "0014_team_budgets_and_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="own_key",
            field=models.BooleanField(default=None, null=True),
        ),
    ]
