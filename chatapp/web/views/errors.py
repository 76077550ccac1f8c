"""Django's own refusals (a request too big to read, one it cannot parse, an address with
nothing behind it) said in the app's words: above the composer for an htmx request, so the
typed message stays where it is, and naming the limit that was hit; a page of the app's own,
with a way back to a new chat, for a browser that asked for a page."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import requires_csrf_token

from chatapp.attachments.images import megabytes

from ..responses import composer_error, plain_error


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        status = 413
        message = (
            f"What you sent is over {megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}, more than "
            f"this server reads; a message can be at most "
            f"{settings.CHAT_LIMITS['message_chars']:,} characters."
        )
    elif isinstance(exception, TooManyFieldsSent):
        status = 400
        message = (
            f"The form sent more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields, more "
            "than this server reads. Reload the page and try again."
        )
    else:
        status = 400
        message = "This request could not be read. Reload the page and try again."
    if getattr(request, "htmx", False):
        return composer_error(message, status)
    return plain_error(message, status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if getattr(request, "htmx", False):
        return composer_error("This conversation or message no longer exists.", 404)
    missing = request.path_info.startswith("/c/")
    return render(request, "404.html", {"conversation_missing": missing}, status=404)
