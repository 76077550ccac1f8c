# Team use: a monthly budget per person, each person's own API keys (encrypted), and the last
# error each route gave with the server's key.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chatapp", "0013_answers_by_time"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="RouteFailure",
            fields=[
                ("route", models.CharField(max_length=20, primary_key=True, serialize=False)),
                ("at", models.DateTimeField()),
                ("code", models.CharField(max_length=40)),
                ("message", models.CharField(max_length=300)),
            ],
        ),
        migrations.AddField(
            model_name="membership",
            name="budget_unit",
            field=models.CharField(
                choices=[("usd", "US dollars"), ("credits", "credits")], default="usd", max_length=7
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="monthly_budget",
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True),
        ),
        migrations.CreateModel(
            name="PersonKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("route", models.CharField(max_length=20)),
                ("secret", models.BinaryField()),
                ("last_four", models.CharField(max_length=4)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("rejected_at", models.DateTimeField(blank=True, null=True)),
                ("rejected_message", models.CharField(blank=True, max_length=300)),
                (
                    "owner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_keys",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("owner", "route"), name="one_key_per_route")
                ],
            },
        ),
    ]
