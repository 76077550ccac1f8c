"""A person's own key for one route, encrypted (`credentials.crypto`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class PersonKey(models.Model):
    """One route's key of one person. `secret` is the Fernet token of the key (never the key
    itself); `last_four` is all of it ever shown again. `rejected_at` is set when the upstream
    refused the key (401/403 as a bad key) and cleared when the key is replaced."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    route = models.CharField(max_length=20)
    secret = models.BinaryField()
    last_four = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_message = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "route"], name="one_key_per_route"),
        ]

    def __str__(self) -> str:
        # Never the token: this lands in logs and tracebacks.
        return f"{self.owner_id} {self.route} …{self.last_four}"


class RouteFailure(models.Model):
    """The last error a route gave with the server's own key (the Admin page's "Routes"
    table): one row per route, written only when an answer fails, so it costs a turn nothing.
    Failures with a person's own key are theirs, marked on their key instead."""

    route = models.CharField(max_length=20, primary_key=True)
    at = models.DateTimeField()
    code = models.CharField(max_length=40)
    message = models.CharField(max_length=300)

    def __str__(self) -> str:
        return f"{self.route}: {self.code}"
