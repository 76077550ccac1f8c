"""Read-only admin: rows are written by the app's services, never edited by hand."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from .attachments.models import Attachment
from .conversations.models import Conversation, Message
from .turns.models import Worker


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("title", "owner", "route", "model", "pinned", "updated_at")
    list_filter = ("route", "pinned")
    search_fields = ("title",)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "conversation", "role", "status", "model", "finish_reason", "created_at")
    list_filter = ("role", "status", "route")
    raw_id_fields = ("conversation", "parent")


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = ("id", "hostname", "pid", "started_at", "seen_at")


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "owner", "mime_type", "width", "height", "byte_size", "created_at")
    list_filter = ("mime_type",)
