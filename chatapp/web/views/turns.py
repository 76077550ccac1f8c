"""Send a message, stop an answer, regenerate or continue one, edit a message, delete a turn.
Each view is the form, one service call and the hand-over to the run manager; the upstream request starts before the response
is rendered (it is the first token's critical path, and the browser's stream attaches
meanwhile)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseLocation, reswap, retarget

from chatapp.conversations import selectors
from chatapp.conversations.models import Conversation, Message
from chatapp.core.errors import InvalidSettings, ServiceError
from chatapp.providers import catalog
from chatapp.providers.types import ChatRequest
from chatapp.turns import live, manager, services
from chatapp.turns.pacing import asked_interval
from chatapp.turns.requests import continuation_request, first_turn_source, turn_request
from chatapp.turns.selectors import active_message
from chatapp.turns.workers import WORKER_ID

from ..forms import ComposerForm, EditForm
from ..requests import AuthenticatedRequest, person_routes
from ..responses import composer_error, whole_thread
from ..settings_panel import SettingsForm


@require_POST
def turn_create(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    composer = ComposerForm(request.POST)
    settings_form = SettingsForm(request.POST, routes=person_routes(request))
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
            parent_id=composer.cleaned_data["parent"],
        )
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None
    except ServiceError as exc:
        return composer_error(exc.message, exc.status)
    answer = turn.assistant_message
    if turn.new_conversation:
        _ensure_running(request, answer, first_turn_source(turn=turn))
    else:
        _ensure_running(request, answer, lambda: turn_request(message=answer))
    if request.POST.get("page") == "new":
        # The first message of a new chat: show the conversation's own page (its URL, the
        # sidebar entry); the answer keeps streaming there.
        return HttpResponseLocation(
            reverse("conversation-detail", args=[turn.conversation.id]), target="body"
        )
    # The articles are the response and, for the conversation's other open pages, the live
    # frame: rendered once (each render of a message is ~0.5 ms of a send's CPU).
    articles = _articles(request, [turn.user_message, answer])
    if turn.created and not turn.new_conversation:
        # The conversation's other open pages show the turn as it is sent. A conversation
        # this send made has none: no page could follow it before it existed, and one
        # opened since reads the turn with it.
        live.publish_turn(
            conversation_id=turn.conversation.id,
            html=articles,
            tab=request.headers.get(TAB_HEADER, ""),
            after=turn.user_message.parent_id,
        )
    html = articles + render_to_string("chatapp/_turn.html", {"composer_key": uuid.uuid4()})
    return HttpResponse(html)


TAB_HEADER = "X-Chat-Tab"
# The frames a second the page's script asks a stream it starts for (turns/pacing.py,
# `asked_interval`): it pays for every event it gets, shown or not.
FRAMES_HEADER = "X-Chat-Frames"


def _articles(request: AuthenticatedRequest, messages: list[Message]) -> str:
    return "".join(
        render_to_string(
            "chatapp/_message.html", {"message": m, "is_last": True, "request": request}
        )
        for m in messages
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
def message_regenerate(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Regenerate (or Retry) an answer: a new version streams in its place, with this chat's
    model or with the one `model` names ("Regenerate with another model")."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    spec = None
    if key := request.POST.get("model", ""):
        spec = catalog.get_model_by_key(key[: catalog.MODEL_KEY_MAX_CHARS], person_routes(request))
        if spec is None:
            return composer_error(
                "That model is not available on this server; choose another.", 400
            )
    try:
        answer = services.turn_regenerate(message=message, worker_id=WORKER_ID, spec=spec)
    except InvalidSettings as exc:
        return composer_error(_with_fields(exc), exc.status)
    except ServiceError as exc:
        return composer_error(exc.message, exc.status)
    _ensure_running(request, answer, lambda: turn_request(message=answer))
    return _branch_response(request, message.conversation, first=answer, replaces=message)


@require_POST
def message_edit(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Send an edited message: a new version of it, and its answer, in its place."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    form = EditForm(request.POST)
    if not form.is_valid():
        return _edit_error(message, "The form expired. Reload the page and edit again.", 400)
    try:
        turn = services.turn_edit(
            message=message,
            text=form.cleaned_data["text"],
            attachment_ids=form.cleaned_data["attachments"],
            idempotency_key=form.cleaned_data["idempotency_key"],
            worker_id=WORKER_ID,
        )
    except InvalidSettings as exc:
        return _edit_error(message, _with_fields(exc), exc.status)
    except ServiceError as exc:
        return _edit_error(message, exc.message, exc.status)
    answer = turn.assistant_message
    _ensure_running(request, answer, lambda: turn_request(message=answer))
    if not request.htmx:  # the form sent before htmx took it over: the page shows the edit
        return redirect("conversation-detail", conversation_id)
    return _branch_response(request, turn.conversation, first=turn.user_message, replaces=message)


@require_POST
def message_results(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Send the results typed for an answer's function calls: the answer (now without its
    result fields), the results and the next answer, which streams, in the answer's place."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    try:
        turn = services.turn_results(
            message=message,
            results=request.POST.getlist("result"),
            # One set of results per answer: a double submit finds the first.
            idempotency_key=uuid.uuid5(message.pk, "function-results"),
            worker_id=WORKER_ID,
        )
    except ServiceError as exc:
        response = HttpResponse(escape(exc.message), status=exc.status)
        return reswap(retarget(response, f"#m-{message.pk} .fn-error"), "innerHTML")
    answer = turn.assistant_message
    _ensure_running(request, answer, lambda: turn_request(message=answer))
    called = render_to_string(
        "chatapp/_message.html", {"message": message, "is_last": False, "request": request}
    )
    html = called + _articles(request, [turn.user_message, answer])
    if turn.created:
        # The conversation's other open pages show the results and the answer going on.
        _publish_replacement(request, message.conversation_id, html, replaces=message)
    return HttpResponse(html)


@require_POST
def turn_delete(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Delete one of the person's messages with its answers and all that followed them; what
    the branch shows below its parent now takes its place."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    try:
        conversation = services.turn_delete(message=message)
    except ServiceError as exc:
        return composer_error(exc.message, exc.status)
    branch = selectors.branch_after(conversation=conversation, parent_id=message.parent_id)
    if branch is None:
        return whole_thread(request, conversation)
    html = render_to_string("chatapp/_branch.html", {"messages": branch, "request": request})
    _publish_replacement(request, conversation.id, html, replaces=message)
    return HttpResponse(html)


@require_POST
def message_continue(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Continue an answer that stopped part-way: the same message streams on from its text."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    try:
        answer = services.turn_continue(message=message, worker_id=WORKER_ID)
    except ServiceError as exc:
        return composer_error(exc.message, exc.status)
    _ensure_running(request, answer, lambda: continuation_request(message=answer), answer.content)
    return _branch_response(request, answer.conversation, first=answer, replaces=message)


def _branch_response(
    request: AuthenticatedRequest, conversation: Conversation, *, first: Message, replaces: Message
) -> HttpResponse:
    """The branch from `first` (a new answer, a new version of a message) in place of
    `replaces` and what followed it, here and on the conversation's other open pages."""
    branch = selectors.branch_from(conversation=conversation, first_id=first.pk) or [first]
    html = render_to_string("chatapp/_branch.html", {"messages": branch, "request": request})
    _publish_replacement(request, conversation.id, html, replaces=replaces)
    return HttpResponse(html)


def _publish_replacement(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, html: str, *, replaces: Message
) -> None:
    live.publish_turn(
        conversation_id=conversation_id,
        html=html,
        tab=request.headers.get(TAB_HEADER, ""),
        replaces=replaces.pk,
    )


def _with_fields(exc: InvalidSettings) -> str:
    """The settings' refusal with each field's own message (there is no panel to mark)."""
    return " ".join([exc.message, *exc.errors.values()])


def _edit_error(message: Message, text: str, status: int) -> HttpResponse:
    """A refused edit, said in its form; what was typed stays there. (A form sent before
    htmx took it over gets the text alone: the page is one Back away.)"""
    response = HttpResponse(escape(text), status=status)
    return reswap(retarget(response, f"#m-{message.pk} .edit-error"), "innerHTML")


def _ensure_running(
    request: AuthenticatedRequest,
    message: Message,
    build_request: ChatRequest | Callable[[], ChatRequest],
    prefix: str = "",
) -> None:
    """Launch the run for a pending message of this process - also when a replayed submit
    finds one saved but never started (the process failed between commit and launch); a run
    already going is left alone. Given as a function, the request is built by the run as it
    begins (reading the thread), so the response does not wait for that."""
    if message.status == Message.Status.PENDING and message.worker_id == WORKER_ID:
        manager.launch(
            message=message,
            request=build_request,
            prefix=prefix,
            owner_id=request.user.pk,
            frame_interval=asked_interval(request.headers.get(FRAMES_HEADER, "")),
        )
