"""Responses several views share."""

from __future__ import annotations

from django.http import HttpResponse
from django.template.loader import render_to_string
from django_htmx.http import reswap, retarget

from chatapp.conversations import selectors
from chatapp.conversations.models import Conversation

from .requests import AuthenticatedRequest
from .settings_panel import SettingsForm, settings_feedback


def composer_error(
    message: str,
    status: int,
    form: SettingsForm | None = None,
    request: AuthenticatedRequest | None = None,
) -> HttpResponse:
    """An error shown above the composer; the typed message stays in the textbox. With the
    settings form, its errors are marked in the panel too."""
    context: dict[str, object] = {"message": message}
    if form is not None and request is not None:
        context.update(settings_feedback(request, form))
    response = HttpResponse(
        render_to_string("chatapp/_composer_error.html", context), status=status
    )
    return reswap(retarget(response, "#composer-error"), "innerHTML")


def plain_error(message: str, status: int) -> HttpResponse:
    """A refusal as plain text (the upload XHR shows it as text)."""
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def whole_thread(request: AuthenticatedRequest, conversation: Conversation) -> HttpResponse:
    """The thread's first page in place of all it shows: what a version switch or a deleted
    turn answers with when the branch that follows is longer than a page."""
    html = render_to_string(
        "chatapp/_thread_page.html",
        {"conversation": conversation, "page": selectors.thread_page(conversation=conversation)},
        request=request,
    )
    return reswap(retarget(HttpResponse(html), "#thread"), "innerHTML")
