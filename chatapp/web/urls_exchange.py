"""The URLs of exporting and importing conversations (web/views/exchange.py), kept apart so
that the export/import work and the rest of the URLconf change independently."""

from __future__ import annotations

from django.urls import URLPattern, path

from .views import exchange

urlpatterns: list[URLPattern] = [
    path(
        "c/<uuid:conversation_id>/export.md",
        exchange.conversation_export_markdown,
        name="conversation-export-markdown",
    ),
    path(
        "c/<uuid:conversation_id>/export.zip",
        exchange.conversation_export_json,
        name="conversation-export-json",
    ),
    path("export/", exchange.conversations_export, name="conversations-export"),
    path("import/", exchange.conversations_import, name="conversations-import"),
]
