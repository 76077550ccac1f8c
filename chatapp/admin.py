"""Django's admin shows nothing of what people wrote: no conversation, message or image (their
titles and text are theirs, not the administrator's). People are managed on the app's own
Admin page (`web/views/people.py`); here remain the server's processes, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from .turns.models import Worker


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = ("id", "hostname", "pid", "started_at", "seen_at")
