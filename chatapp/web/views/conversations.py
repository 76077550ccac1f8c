"""A conversation's settings (autosaved from the panel, or checked before a new chat's first
message), its pin and its deletion, and a message's text for copying."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from chatapp.conversations import selectors, services
from chatapp.core.errors import ServiceError

from ..requests import AuthenticatedRequest
from ..responses import composer_error
from ..settings_panel import SettingsForm, settings_feedback


@require_POST
def conversation_settings(
    request: AuthenticatedRequest, conversation_id: uuid.UUID
) -> HttpResponse:
    """Autosave of the settings panel: answers with the field errors, hints and status only,
    so the panel is not re-rendered under the person's cursor; a new model re-renders the
    options section (see settings_panel.settings_feedback)."""
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    form = SettingsForm(request.POST)
    saved = form.is_valid()
    if saved:
        services.conversation_settings_update(
            conversation=conversation, chat_settings=form.chat_settings
        )
    return render(
        request, "chatapp/_settings_feedback.html", settings_feedback(request, form, saved=saved)
    )


@require_POST
def settings_check(request: AuthenticatedRequest) -> HttpResponse:
    """Validation feedback for the settings panel of a chat not saved yet (the new-chat page):
    the settings are saved with its first message."""
    form = SettingsForm(request.POST)
    form.is_valid()
    return render(
        request, "chatapp/_settings_feedback.html", settings_feedback(request, form, checking=True)
    )


@require_POST
def conversation_pin(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    services.conversation_pin(conversation=conversation, pinned=not conversation.pinned)
    return HttpResponseClientRefresh()


@require_POST
def conversation_delete(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    try:
        services.conversation_delete(conversation=conversation)
    except ServiceError as exc:
        return composer_error(exc.message, exc.status)
    return HttpResponseClientRedirect(reverse("chat-home"))


@require_GET
def message_text(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """A message's text as written (an answer's markdown), for "Copy answer"; its owner's only."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    response = HttpResponse(message.content, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = "inline"
    return response
