"""Export a conversation (Markdown, or JSON in a zip with its images) or every conversation
(a zip), and the "Import conversations" page. Exports stream as they are read
(`exchange.export`); an import is one service call whose report, or refusal naming the
limit, the page shows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from chatapp.attachments.images import megabytes
from chatapp.conversations import selectors
from chatapp.core.errors import ServiceError
from chatapp.exchange import export, services

from ..requests import AuthenticatedRequest
from ..responses import ThreadedStreamingHttpResponse


@require_GET
def conversation_export_markdown(
    request: AuthenticatedRequest, conversation_id: uuid.UUID
) -> ThreadedStreamingHttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    return _download(
        export.conversation_markdown(conversation),
        "text/markdown; charset=utf-8",
        export.file_name(conversation.title, "md"),
    )


@require_GET
def conversation_export_json(
    request: AuthenticatedRequest, conversation_id: uuid.UUID
) -> ThreadedStreamingHttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    return _download(
        export.conversation_zip(conversation),
        "application/zip",
        export.file_name(conversation.title, "zip"),
    )


@require_GET
def conversations_export(request: AuthenticatedRequest) -> ThreadedStreamingHttpResponse:
    stamp = timezone.now().strftime("%Y-%m-%d")
    return _download(
        export.conversations_zip(request.user), "application/zip", f"gemini-chat-{stamp}.zip"
    )


def _download(
    pieces: Iterator[bytes], content_type: str, name: str
) -> ThreadedStreamingHttpResponse:
    response = ThreadedStreamingHttpResponse(pieces, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, name) or "attachment"
    return response


@require_http_methods(["GET", "POST"])
def conversations_import(request: AuthenticatedRequest) -> HttpResponse:
    """GET: the page. POST: import the file chosen; the report (or the refusal) answers, as
    a fragment for htmx and on the page otherwise."""
    limits = settings.CHAT_LIMITS
    context: dict[str, object] = {
        "max_size": megabytes(limits["import_bytes"]),
        "max_unzipped": megabytes(limits["import_unzipped_bytes"]),
        "max_entries": limits["import_zip_entries"],
        "max_conversations": limits["import_conversations"],
        "max_messages": limits["import_messages"],
    }
    status = 200
    if request.method == "POST":
        files = request.FILES.getlist("file")
        if len(files) != 1:
            context["error"] = "Choose one export file to import (a .zip or .json file)."
            status = 400
        else:
            try:
                context["report"] = services.import_file(
                    owner=request.user, upload=files[0], size=files[0].size or 0
                )
            except ServiceError as exc:
                context["error"] = exc.message
                status = exc.status
        if request.htmx:
            return render(request, "chatapp/_import_result.html", context, status=status)
    return render(request, "chatapp/import.html", context, status=status)
