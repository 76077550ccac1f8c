"""The URLs of exporting and importing conversations (web/views/exchange.py), kept apart so
that the export/import work and the rest of the URLconf change independently."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
