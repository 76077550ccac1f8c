"""Views: permission, form, one service call, render. Upstream calls never happen here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import generation, images, selectors, services
from .forms import ComposerForm, SettingsForm, SignupForm
from .models import Conversation, Message
from .providers import catalog

# --- Health and accounts ------------------------------------------------------------------


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    connection.ensure_connection()
    return HttpResponse("ok", content_type="text/plain")


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "allow_signup": settings.ALLOW_SIGNUP}


@login_not_required
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_SIGNUP:
        return render(request, "registration/signup_closed.html", status=403)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_signup(
            username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat-home")
    return render(request, "registration/signup.html", {"form": form})


# --- Pages --------------------------------------------------------------------------------


@require_GET
def chat_home(request: HttpRequest) -> HttpResponse:
    """A new chat: nothing is saved until the first message is sent."""
    spec, system_prompt, options = selectors.chat_settings_initial(owner=request.user)
    context = _page_context(
        request,
        conversation=None,
        send_url=reverse("turn-create", args=[uuid.uuid4()]),
        settings_form=SettingsForm(initial=SettingsForm.initial_for(spec, system_prompt, options)),
        spec=spec,
    )
    return render(request, "chatapp/chat.html", context)


@require_GET
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    spec = catalog.get_model(conversation.route, conversation.model)
    initial_spec = spec or catalog.default_model()
    form = SettingsForm(
        initial=SettingsForm.initial_for(
            initial_spec, conversation.system_prompt, conversation.settings
        )
    )
    page = selectors.thread_page(conversation=conversation)
    context = _page_context(
        request,
        conversation=conversation,
        send_url=reverse("turn-create", args=[conversation.id]),
        settings_form=form,
        spec=initial_spec,
        page=page,
    )
    if spec is None:
        context["settings_notice"] = (
            f"The model this conversation used ({conversation.model}) is not available on this "
            "server any more; choose another one."
        )
    return render(request, "chatapp/chat.html", context)


@require_GET
def conversation_older(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    page = selectors.thread_page(conversation=conversation, before=request.GET.get("before"))
    return render(
        request, "chatapp/_thread_page.html", {"conversation": conversation, "page": page}
    )


@require_GET
def sidebar_more(request: HttpRequest) -> HttpResponse:
    """The next page of the sidebar ("Show more")."""
    sidebar = selectors.sidebar_page(owner=request.user, before=request.GET.get("before", ""))
    current = request.GET.get("current", "")
    return render(
        request, "chatapp/_sidebar_items.html", {"sidebar": sidebar, "current_id": current}
    )


def _page_context(
    request: HttpRequest,
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
        "sidebar": selectors.sidebar_page(owner=request.user),
        "page": page,
        "busy": busy,
        "send_url": send_url,
        "composer_key": uuid.uuid4(),
        **_settings_context(settings_form, spec),
        "model_groups": catalog.grouped_models(),
        "demo_only": list(settings.PROVIDERS) == ["demo"],
        "images_per_message": settings.CHAT_LIMITS["images_per_message"],
        "image_max_bytes": settings.CHAT_IMAGE_LIMITS["max_bytes"],
        "image_max_size": images.megabytes(settings.CHAT_IMAGE_LIMITS["max_bytes"]),
    }


def _settings_context(
    form: SettingsForm, spec: catalog.ModelSpec, *, posted: set[str] | None = None
) -> dict[str, Any]:
    """What the settings panel's options section (`_settings_options.html`) shows: the
    route of the chosen model, its note, and the parameters the form offers for it."""
    return {
        "settings_form": form,
        "settings_spec": spec,
        "route_note": catalog.ROUTE_NOTES.get(spec.route, ""),
        "settings_controls": form.controls(spec, posted=posted),
    }


def _settings_feedback(request: HttpRequest, form: SettingsForm, **extra: Any) -> dict[str, Any]:
    """The context of `_settings_feedback.html` after a change in the panel. A new model
    re-renders the options section (its parameters differ); any other field gets its
    error, hint and the status swapped in place, so nothing moves under the cursor."""
    spec = catalog.get_model_by_key(form.data.get("model", "")) or catalog.default_model()
    # app.js names the changed field (the request comes from the panel, not the field); the
    # section also records the model it was drawn for, which catches a model change
    # folded into a later one by the trigger's delay, or sent before its autosave.
    drawn_for = form.data.get("options_for")
    new_model = request.headers.get("HX-Trigger-Name") == "model" or (
        drawn_for is not None and drawn_for != spec.key
    )
    context = _settings_context(form, spec, posted=None if new_model else set(form.data))
    return {**context, "rerender": new_model, **extra}


# --- Turns --------------------------------------------------------------------------------


def _composer_error(
    message: str,
    status: int,
    form: SettingsForm | None = None,
    request: HttpRequest | None = None,
) -> HttpResponse:
    """An error shown above the composer; the typed message stays in the textbox. With the
    settings form, its errors are marked in the panel."""
    context: dict[str, Any] = {"message": message}
    if form is not None and request is not None:
        context.update(_settings_feedback(request, form))
    html = render_to_string("chatapp/_composer_error.html", context)
    response = HttpResponse(html, status=status)
    response["HX-Retarget"] = "#composer-error"
    response["HX-Reswap"] = "innerHTML"
    return response


@require_POST
def turn_create(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    composer = ComposerForm(request.POST)
    settings_form = SettingsForm(request.POST)
    if not composer.is_valid():
        return _composer_error("The form expired. Reload the page and send again.", 400)
    if not settings_form.is_valid():
        return _composer_error(
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
            worker_id=generation.WORKER_ID,
        )
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None
    except services.ServiceError as exc:
        return _composer_error(exc.message, exc.status)
    # The upstream request starts before this response is rendered: it is the first token's
    # critical path, and the browser's stream attaches meanwhile.
    if turn.new_conversation:
        _ensure_running(turn.assistant_message, lambda: selectors.first_turn_request(turn=turn))
    else:
        _ensure_running(
            turn.assistant_message,
            lambda: selectors.turn_request(message=turn.assistant_message),
        )
    if request.POST.get("page") == "new":
        # The first message of a new chat: show the conversation's own page (its URL, the
        # sidebar entry); the answer keeps streaming there.
        response = HttpResponse(status=200)
        response["HX-Location"] = json.dumps(
            {"path": reverse("conversation-detail", args=[turn.conversation.id]), "target": "body"}
        )
        return response
    html = render_to_string(
        "chatapp/_turn.html",
        {
            "messages": [turn.user_message, turn.assistant_message],
            "composer_key": uuid.uuid4(),
        },
    )
    return HttpResponse(html)


def _ensure_running(message: Message, build_request: Callable[[], Any], prefix: str = "") -> None:
    """Launch the run for a pending message of this process - also when a replayed submit
    finds one saved but never started (the process failed between commit and launch); a run
    already going is left alone."""
    if message.status == Message.Status.PENDING and message.worker_id == generation.WORKER_ID:
        generation.launch(
            message_id=message.id, route=message.route, request=build_request(), prefix=prefix
        )


@require_POST
def turn_stop(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    message = selectors.active_message(conversation=conversation)
    if message is not None:
        generation.request_stop(message.id)
    # The stream delivers the stopped answer; nothing to swap here.
    return HttpResponse(status=204)


@require_POST
def message_retry(
    request: HttpRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    conversation = message.conversation
    try:
        chat_settings = services.chat_settings_validate(
            model_key=f"{conversation.route}:{conversation.model}",
            system_prompt=conversation.system_prompt,
            raw_options=conversation.settings,
        )
        replacement = services.turn_retry(
            message=message, chat_settings=chat_settings, worker_id=generation.WORKER_ID
        )
    except services.ServiceError as exc:
        return _composer_error(exc.message, exc.status)
    _ensure_running(replacement, lambda: selectors.turn_request(message=replacement))
    html = render_to_string("chatapp/_message.html", {"message": replacement, "is_last": True})
    return HttpResponse(html)


@require_POST
def message_continue(
    request: HttpRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """Continue an answer that stopped part-way: the same message streams on from its text."""
    message = selectors.message_for_owner(
        owner=request.user, conversation_id=conversation_id, message_id=message_id
    )
    try:
        message = services.turn_continue(message=message, worker_id=generation.WORKER_ID)
    except services.ServiceError as exc:
        return _composer_error(exc.message, exc.status)
    _ensure_running(
        message,
        lambda: selectors.continuation_request(message=message),
        prefix=message.content,
    )
    html = render_to_string("chatapp/_message.html", {"message": message, "is_last": True})
    return HttpResponse(html)


# --- Attachments --------------------------------------------------------------------------


@require_POST
def attachment_upload(request: HttpRequest) -> HttpResponse:
    """One image from the composer (XHR, for upload progress): validated, normalised and
    stored; answers with its thumbnail and the hidden input that sends it with the message.
    A refusal answers 400/413/429 with the reason as plain text (shown by app.js as text)."""
    files = request.FILES.getlist("image")
    if len(files) != 1:
        return _upload_error("Attach one image per upload.", 400)
    try:
        attachment = services.attachment_create(owner=request.user, upload=files[0])
    except services.ServiceError as exc:
        return _upload_error(exc.message, exc.status)
    return render(request, "chatapp/_attachment_item.html", {"attachment": attachment})


def _upload_error(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@require_GET
def attachment_file(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    return _attachment_response(request, attachment_id, thumbnail=False)


@require_GET
def attachment_thumbnail(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    return _attachment_response(request, attachment_id, thumbnail=True)


def _attachment_response(
    request: HttpRequest, attachment_id: uuid.UUID, *, thumbnail: bool
) -> HttpResponse:
    """An image, to its owner only (SECURITY 8): the Content-Type is the one we encoded, the
    browser may not sniff another, and only the owner's browser may cache it."""
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


# --- Conversation settings and housekeeping ----------------------------------------------


@require_POST
def conversation_settings(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Autosave of the settings panel: answers with the field errors, hints and status only,
    so the panel is not re-rendered under the person's cursor; a new model re-renders the
    options section (see _settings_feedback)."""
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
        request, "chatapp/_settings_feedback.html", _settings_feedback(request, form, saved=saved)
    )


@require_POST
def settings_check(request: HttpRequest) -> HttpResponse:
    """Validation feedback for the settings panel of a chat not saved yet (the new-chat page):
    the settings are saved with its first message."""
    form = SettingsForm(request.POST)
    form.is_valid()
    return render(
        request,
        "chatapp/_settings_feedback.html",
        _settings_feedback(request, form, checking=True),
    )


@require_POST
def conversation_pin(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    services.conversation_pin(conversation=conversation, pinned=not conversation.pinned)
    response = HttpResponse(status=204)
    response["HX-Refresh"] = "true"
    return response


@require_POST
def conversation_delete(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner=request.user, conversation_id=conversation_id
    )
    try:
        services.conversation_delete(conversation=conversation)
    except services.ServiceError as exc:
        return _composer_error(exc.message, exc.status)
    response = HttpResponse(status=204)
    response["HX-Redirect"] = reverse("chat-home")
    return response
