"""The chat page (a new chat or a conversation, or a search hit in one), its older messages,
the sidebar's pages and search."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from chatapp.attachments import images
from chatapp.conversations import search, selectors
from chatapp.conversations.models import Conversation
from chatapp.providers import catalog

from ..requests import AuthenticatedRequest, person_routes, person_timezone
from ..settings_panel import SettingsForm, settings_context


@require_GET
def chat_home(request: AuthenticatedRequest) -> HttpResponse:
    """A new chat: nothing is saved until the first message is sent. It starts from the
    person's defaults, or from the preset `?preset=` names."""
    preset_id = _uuid_or_none(request.GET.get("preset", ""))
    routes = person_routes(request)
    spec, system_prompt, options = selectors.chat_settings_initial(
        owner=request.user, preset_id=preset_id, routes=routes
    )
    form = SettingsForm(
        initial=SettingsForm.initial_for(spec, system_prompt, options), routes=routes
    )
    context = page_context(
        request,
        conversation=None,
        send_url=reverse("turn-create", args=[uuid.uuid4()]),
        settings_form=form,
        spec=spec,
    )
    presets = context["presets"]
    context["chosen_preset"] = next((p for p in presets if p.id == preset_id), None)
    return render(request, "chatapp/chat.html", context)


def _uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw[:40]) if raw else None
    except ValueError:
        return None


@require_GET
def conversation_detail(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    routes = person_routes(request)
    spec = catalog.get_model(conversation.route, conversation.model, routes)
    shown_spec = spec or catalog.default_model(routes)
    form = SettingsForm(
        initial=SettingsForm.initial_for(
            shown_spec, conversation.system_prompt, conversation.settings
        ),
        routes=routes,
    )
    # A search hit (`?m=` and the query `q`) opens on its branch, scrolled to it, its words
    # marked (app.js); otherwise the branch shown.
    hit = _uuid_or_none(request.GET.get("m", ""))
    page = selectors.hit_page(conversation=conversation, message_id=hit) if hit else None
    context = page_context(
        request,
        conversation=conversation,
        send_url=reverse("turn-create", args=[conversation.id]),
        settings_form=form,
        spec=shown_spec,
        page=page or selectors.thread_page(conversation=conversation),
    )
    if page is not None:
        context["hit_id"] = f"m-{hit}"
        context["hit_words"] = json.dumps(search.words_in(request.GET.get("q", "")))
    if spec is None:
        context["settings_notice"] = (
            f"The model this conversation used ({conversation.model}) is not available on this "
            "server any more; choose another one."
        )
    return render(request, "chatapp/chat.html", context)


@require_GET
def conversation_older(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    page = selectors.thread_page(conversation=conversation, before=request.GET.get("before"))
    return render(
        request, "chatapp/_thread_page.html", {"conversation": conversation, "page": page}
    )


@require_GET
def sidebar_more(request: AuthenticatedRequest) -> HttpResponse:
    """The next page of the sidebar ("Show more")."""
    archived = request.GET.get("archived") == "1"
    sidebar = selectors.sidebar_page(
        owner=request.user,
        before=request.GET.get("before", ""),
        archived=archived,
        zone=person_timezone(request),
    )
    context = {
        "sidebar": sidebar,
        "current_id": request.GET.get("current", "")[:40],
        "continues": request.GET.get("group", "")[:40],
        "archived": archived,
        "first_page": not request.GET.get("before"),
    }
    return render(request, "chatapp/_sidebar_items.html", context)


def page_context(
    request: AuthenticatedRequest,
    *,
    conversation: Conversation | None,
    send_url: str,
    settings_form: SettingsForm,
    spec: catalog.ModelSpec,
    page: selectors.ThreadPage | None = None,
) -> dict[str, Any]:
    busy = bool(page and any(m.is_active for m in page.messages))
    return {
        "conversation": conversation,
        "sidebar": selectors.sidebar_page(owner=request.user, zone=person_timezone(request)),
        "page": page,
        "busy": busy,
        "send_url": send_url,
        "composer_key": uuid.uuid4(),
        **settings_context(settings_form, spec),
        "model_groups": catalog.grouped_models(person_routes(request)),
        "presets": selectors.presets_for(owner=request.user),
        "demo_only": list(person_routes(request)) == ["demo"],
        "images_per_message": settings.CHAT_LIMITS["images_per_message"],
        "image_max_bytes": settings.CHAT_IMAGE_LIMITS["max_bytes"],
        "image_max_size": images.megabytes(settings.CHAT_IMAGE_LIMITS["max_bytes"]),
    }


@require_GET
def conversation_search(request: AuthenticatedRequest) -> HttpResponse:
    """ "Search conversations": the results in place of the sidebar's list, a page at a time
    ("More results"); an empty box gives nothing (the list comes back)."""
    raw = request.GET.get("q", "")
    try:
        offset = int(request.GET.get("offset", "0")[:6] or 0)
    except ValueError:
        offset = 0
    context: dict[str, Any] = {"raw": raw, "results": None, "error": "", "offset": offset}
    if raw.strip():
        try:
            context["results"] = search.search(owner=request.user, raw=raw, offset=offset)
        except search.BadQuery as exc:
            context["error"] = exc.message
    return render(request, "chatapp/_search_results.html", context)
