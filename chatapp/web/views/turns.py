"""Send a message, stop an answer, retry or continue one. Each view is the form, one service
call and the hand-over to the run manager; the upstream request starts before the response
is rendered (it is the first token's critical path, and the browser's stream attaches
meanwhile)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import Http404, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseLocation

from chatapp.conversations import selectors
from chatapp.conversations.models import Conversation, Message
from chatapp.core.errors import ServiceError
from chatapp.providers.types import ChatRequest
from chatapp.turns import live, manager, services
from chatapp.turns.requests import continuation_request, first_turn_request, turn_request
from chatapp.turns.selectors import active_message
from chatapp.turns.workers import WORKER_ID

from ..forms import ComposerForm
from ..requests import AuthenticatedRequest
from ..responses import composer_error
from ..settings_panel import SettingsForm


@require_POST
def turn_create(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    composer = ComposerForm(request.POST)
    settings_form = SettingsForm(request.POST)
    if not composer.is_valid():
        return composer_error("The form expired. Reload the page and send again.", 400)
    if not settings_form.is_valid():
        return composer_error(
            "Fix the settings marked below, then send.", 400, settings_form, request
        )
    try:
        turn = services.turn_start(
            owner=request.user,
            conversation_id=conversation_id,
            text=composer.cleaned_data["text"],
            attachment_ids=composer.cleaned_data["attachments"],
            idempotency_key=composer.cleaned_data["idempotency_key"],
            chat_settings=settings_form.chat_settings,
            worker_id=WORKER_ID,
        )
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None
    except ServiceError as exc:
        return composer_error(exc.message, exc.status)
    answer = turn.assistant_message
    if turn.new_conversation:
        _ensure_running(answer, lambda: first_turn_request(turn=turn))
    else:
        _ensure_running(answer, lambda: turn_request(message=answer))
    if request.POST.get("page") == "new":
        # The first message of a new chat: show the conversation's own page (its URL, the
        # sidebar entry); the answer keeps streaming there.
        return HttpResponseLocation(
            reverse("conversation-detail", args=[turn.conversation.id]), target="body"
        )
    html = render_to_string(
        "chatapp/_turn.html",
        {"messages": [turn.user_message, answer], "composer_key": uuid.uuid4()},
    )
    if turn.created:
        # The conversation's other open pages show the turn as it is sent.
        live.publish_turn(
            conversation_id=turn.conversation.id,
            html=_articles([turn.user_message, answer]),
            tab=request.headers.get(TAB_HEADER, ""),
        )
    return HttpResponse(html)


TAB_HEADER = "X-Chat-Tab"


def _articles(messages: list[Message]) -> str:
    return "".join(
        render_to_string("chatapp/_message.html", {"message": m, "is_last": True}) for m in messages
    )


@require_POST
def turn_stop(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    message = active_message(conversation=conversation)
    if message is not None:
        manager.request_stop(message.id)
    # The stream delivers the stopped answer; nothing to swap here.
    return HttpResponse(status=204)


@require_POST
def message_retry(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Answer the same prompt again: a new answer replaces this one in the thread."""
    return _answer_again(request, conversation_id, message_id, continued=False)


@require_POST
def message_continue(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Continue an answer that stopped part-way: the same message streams on from its text."""
    return _answer_again(request, conversation_id, message_id, continued=True)


def _answer_again(
    request: AuthenticatedRequest,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    continued: bool,
) -> HttpResponse:
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    try:
        if continued:
            answer = services.turn_continue(message=message, worker_id=WORKER_ID)
        else:
            answer = services.turn_retry(message=message, worker_id=WORKER_ID)
    except ServiceError as exc:
        return composer_error(exc.message, exc.status)
    if continued:
        _ensure_running(answer, lambda: continuation_request(message=answer), answer.content)
    else:
        _ensure_running(answer, lambda: turn_request(message=answer))
    html = render_to_string("chatapp/_message.html", {"message": answer, "is_last": True})
    live.publish_turn(
        conversation_id=conversation_id,
        html=html,
        tab=request.headers.get(TAB_HEADER, ""),
        replaces=message.id,
    )
    return HttpResponse(html)


def _ensure_running(
    message: Message, build_request: Callable[[], ChatRequest], prefix: str = ""
) -> None:
    """Launch the run for a pending message of this process - also when a replayed submit
    finds one saved but never started (the process failed between commit and launch); a run
    already going is left alone."""
    if message.status == Message.Status.PENDING and message.worker_id == WORKER_ID:
        manager.launch(
            message_id=message.id, route=message.route, request=build_request(), prefix=prefix
        )
