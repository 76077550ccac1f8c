"""The server processes that run generations (one row per process)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Worker(models.Model):
    """A server process that runs generations. It refreshes `seen_at` every few seconds; runs
    owned by a worker that stopped refreshing are marked interrupted by any other worker."""

    id = models.UUIDField(primary_key=True, editable=False)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"
