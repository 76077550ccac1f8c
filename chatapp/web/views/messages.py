"""One message in its place in the thread: shown again (an edit cancelled), edited, a version
switched to, the models an answer can be regenerated with. Views that replace a message and
everything after it answer with the branch from it (`_branch.html`); app.js drops what
followed (the control that asked carries `data-branch`)."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chatapp.conversations import selectors, services
from chatapp.conversations.models import Message
from chatapp.providers import catalog

from ..requests import AuthenticatedRequest, person_routes
from ..responses import whole_thread


@require_GET
def message_detail(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """The message's article as the thread shows it (an edit cancelled)."""
    message = selectors.message_for_owner(
        owner=request.user,
        conversation_id=conversation_id,
        message_id=message_id,
        with_versions=True,
    )
    return render(request, "chatapp/_message.html", {"message": message})


# Rows of the edit box: the message's own lines, within reason.
EDIT_ROWS = (3, 16)


@require_GET
def message_edit_form(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    if message.role != Message.Role.USER:
        return HttpResponse("Only your own messages can be edited.", status=400)
    rows = max(EDIT_ROWS[0], min(EDIT_ROWS[1], message.content.count("\n") + 2))
    return render(
        request,
        "chatapp/_message_edit.html",
        {"message": message, "key": uuid.uuid4(), "rows": rows},
    )


@require_POST
def message_show(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Show this version and its branch (Previous version / Next version)."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    conversation = services.branch_show(conversation=message.conversation, message=message)
    branch = selectors.branch_from(conversation=conversation, first_id=message.pk)
    if branch is None:
        return whole_thread(request, conversation)  # longer than a page: show its end
    return render(request, "chatapp/_branch.html", {"messages": branch})


@require_GET
def message_models(
    request: AuthenticatedRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """The menu of "Regenerate with another model": every model of every route here."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    conversation = message.conversation
    return render(
        request,
        "chatapp/_regenerate_menu.html",
        {
            "message": message,
            "model_groups": catalog.grouped_models(person_routes(request)),
            "current": f"{conversation.route}:{conversation.model}",
        },
    )
