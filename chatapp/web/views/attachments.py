"""Upload an image from the composer; serve an image or its thumbnail to its owner."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chatapp.attachments import images, selectors, services
from chatapp.core.errors import ServiceError

from ..requests import AuthenticatedRequest
from ..responses import plain_error


@require_POST
def attachment_upload(request: AuthenticatedRequest) -> HttpResponse:
    """One image from the composer (XHR, for upload progress): validated, normalised and
    stored; answers with its thumbnail and the hidden input that sends it with the message.
    A refusal answers 400/413/429 with the reason as plain text (shown by app.js as text)."""
    files = request.FILES.getlist("image")
    if len(files) != 1:
        return plain_error("Attach one image per upload.", 400)
    try:
        attachment = services.attachment_create(owner=request.user, upload=files[0])
    except ServiceError as exc:
        return plain_error(exc.message, exc.status)
    return render(request, "chatapp/_attachment_item.html", {"attachment": attachment})


@require_GET
def attachment_file(request: AuthenticatedRequest, attachment_id: uuid.UUID) -> HttpResponse:
    return _attachment_response(request, attachment_id, thumbnail=False)


@require_GET
def attachment_thumbnail(request: AuthenticatedRequest, attachment_id: uuid.UUID) -> HttpResponse:
    return _attachment_response(request, attachment_id, thumbnail=True)


def _attachment_response(
    request: AuthenticatedRequest, attachment_id: uuid.UUID, *, thumbnail: bool
) -> HttpResponse:
    """An image, to its owner only (docs/SECURITY.md rule 8): the Content-Type is the one we
    encoded, the browser may not sniff another, and only the owner's browser may cache it."""
    attachment = selectors.attachment_for_owner(owner=request.user, attachment_id=attachment_id)
    try:
        data = selectors.attachment_bytes(attachment=attachment, thumbnail=thumbnail)
    except FileNotFoundError:
        raise Http404("No such image.") from None
    content_type = images.THUMBNAIL[1] if thumbnail else attachment.mime_type
    if content_type not in images.MIME_TYPES:
        raise Http404("No such image.")
    response = HttpResponse(data, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    # A stored image never changes under its UUID.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    extension = content_type.removeprefix("image/").replace("jpeg", "jpg")
    response["Content-Disposition"] = f'inline; filename="{attachment.id}.{extension}"'
    # Opened on its own (a new tab), the response is an inert sandboxed document.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
