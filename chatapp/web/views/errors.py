"""Django's own refusals (a request too big to read, one it cannot parse) said in the app's
words: above the composer for an htmx request, so the typed message stays where it is, and
naming the limit that was hit."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
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
