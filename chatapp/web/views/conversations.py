"""A conversation's settings (autosaved from the panel, or checked before a new chat's first
message), its name, pin, archiving and deletion, and a message's text for copying."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from chatapp.conversations import selectors, services
from chatapp.conversations.models import Preset
from chatapp.core.errors import ServiceError

from ..requests import AuthenticatedRequest, person_routes
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
    form = SettingsForm(request.POST, routes=person_routes(request))
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
    form = SettingsForm(request.POST, routes=person_routes(request))
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


@require_http_methods(["GET", "POST"])
def conversation_rename(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Rename in place: GET the form (`?cancel=1`: the title back), POST the new name; the
    sidebar's entry follows (out of band)."""
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    context: dict[str, object] = {"conversation": conversation}
    if request.method == "GET":
        context["renaming"] = request.GET.get("cancel") != "1"
        return render(request, "chatapp/_title.html", context)
    try:
        services.conversation_rename(
            conversation=conversation, title=request.POST.get("title", "")[:1000]
        )
    except ServiceError as exc:
        if not request.htmx:
            return redirect("conversation-detail", conversation.id)
        context.update(renaming=True, error=exc.message, typed=request.POST.get("title", "")[:200])
        return render(request, "chatapp/_title.html", context)
    if not request.htmx:  # the form sent before htmx took it over: back to the page
        return redirect("conversation-detail", conversation.id)
    context["renamed"] = True
    return render(request, "chatapp/_title.html", context)


@require_POST
def conversation_archive(request: AuthenticatedRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Archive (to a new chat: the conversation leaves the sidebar) or unarchive (stay)."""
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    services.conversation_archive(conversation=conversation, archived=not conversation.archived)
    if conversation.archived:
        return HttpResponseClientRedirect(reverse("chat-home"))
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


# --- Defaults for new chats and presets ----------------------------------------------------


def _presets_response(
    request: AuthenticatedRequest,
    form: SettingsForm,
    *,
    status: str = "",
    error: str = "",
    chosen: Preset | None = None,
) -> HttpResponse:
    """The presets block again (oob), with what happened; and, when the settings did not
    validate, their errors where the panel shows them."""
    context = {
        "oob": True,
        "conversation": None if request.POST.get("page") == "new" else True,
        "presets": selectors.presets_for(owner=request.user),
        "chosen_preset": chosen,
        "preset_status": status,
        "preset_error": error,
    }
    html = render_to_string("chatapp/_presets.html", context, request=request)
    if form.errors:
        html += render_to_string(
            "chatapp/_settings_feedback.html",
            settings_feedback(request, form, checking=True),
            request=request,
        )
    return HttpResponse(html)


@require_POST
def settings_default(request: AuthenticatedRequest) -> HttpResponse:
    """ "Use as default for new chats": the panel's settings become where new chats start."""
    form = SettingsForm(request.POST, routes=person_routes(request))
    if not form.is_valid():
        return _presets_response(request, form, error="Fix the settings marked below first.")
    services.preset_save(owner=request.user, name=Preset.DEFAULTS, chat_settings=form.chat_settings)
    spec = form.chat_settings.spec
    return _presets_response(
        request,
        form,
        status=f"New chats will start with {spec.label} on {spec.route_label} and these settings.",
    )


@require_POST
def preset_create(request: AuthenticatedRequest) -> HttpResponse:
    """ "Save as preset": the panel's settings under a name (the same name saves over it)."""
    form = SettingsForm(request.POST, routes=person_routes(request))
    name = request.POST.get("preset_name", "")
    if not name.strip():
        return _presets_response(request, form, error="Give the preset a name.")
    if not form.is_valid():
        return _presets_response(request, form, error="Fix the settings marked below first.")
    try:
        preset = services.preset_save(
            owner=request.user, name=name, chat_settings=form.chat_settings
        )
    except ServiceError as exc:
        return _presets_response(request, form, error=exc.message)
    return _presets_response(
        request, form, status=f"Saved the preset “{preset.name}”.", chosen=preset
    )


@require_POST
def preset_delete(request: AuthenticatedRequest, preset_id: uuid.UUID) -> HttpResponse:
    preset = selectors.preset_for_owner(owner=request.user, preset_id=preset_id)
    name = preset.name
    services.preset_delete(preset=preset)
    return _presets_response(
        request, SettingsForm(routes=person_routes(request)), status=f"Deleted the preset “{name}”."
    )
