"""The URLconf. `/stream/<id>/` is routed in `chatapp.asgi`, outside Django, to the SSE
consumer."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import (
    accounts,
    attachments,
    conversations,
    keys,
    messages,
    pages,
    people,
    schemas,
    turns,
    usage,
)

# Django's refusals of a request it cannot read, in the app's words (an htmx send shows them
# above the composer).
handler400 = "chatapp.web.views.errors.bad_request"
handler404 = "chatapp.web.views.errors.not_found"

CONVERSATION = "c/<uuid:conversation_id>/"
MESSAGE = CONVERSATION + "m/<uuid:message_id>/"
ATTACHMENT = "attachments/<uuid:attachment_id>/"

urlpatterns = [
    path("", pages.chat_home, name="chat-home"),
    path("healthz", accounts.healthz, name="healthz"),
    path("settings/check/", conversations.settings_check, name="settings-check"),
    path("settings/default/", conversations.settings_default, name="settings-default"),
    path("presets/", conversations.preset_create, name="preset-create"),
    path("presets/<uuid:preset_id>/delete/", conversations.preset_delete, name="preset-delete"),
    path("schemas/", schemas.schema_list, name="schemas"),
    path("schemas/save/", schemas.schema_save, name="schema-save"),
    path("schemas/<uuid:schema_id>/delete/", schemas.schema_delete, name="schema-delete"),
    path("sidebar/", pages.sidebar_more, name="sidebar-more"),
    path("search/", pages.conversation_search, name="search"),
    path(CONVERSATION, pages.conversation_detail, name="conversation-detail"),
    path(CONVERSATION + "older/", pages.conversation_older, name="conversation-older"),
    path(CONVERSATION + "messages/", turns.turn_create, name="turn-create"),
    path(CONVERSATION + "stop/", turns.turn_stop, name="turn-stop"),
    path(
        CONVERSATION + "settings/",
        conversations.conversation_settings,
        name="conversation-settings",
    ),
    path(CONVERSATION + "pin/", conversations.conversation_pin, name="conversation-pin"),
    path(CONVERSATION + "rename/", conversations.conversation_rename, name="conversation-rename"),
    path(
        CONVERSATION + "archive/", conversations.conversation_archive, name="conversation-archive"
    ),
    path(CONVERSATION + "delete/", conversations.conversation_delete, name="conversation-delete"),
    path(MESSAGE, messages.message_detail, name="message-detail"),
    path(MESSAGE + "regenerate/", turns.message_regenerate, name="message-regenerate"),
    path(MESSAGE + "models/", messages.message_models, name="message-models"),
    path(MESSAGE + "continue/", turns.message_continue, name="message-continue"),
    path(MESSAGE + "results/", turns.message_results, name="message-results"),
    path(MESSAGE + "edit/", messages.message_edit_form, name="message-edit-form"),
    path(MESSAGE + "send-edit/", turns.message_edit, name="message-edit"),
    path(MESSAGE + "show/", messages.message_show, name="message-show"),
    path(MESSAGE + "delete/", turns.turn_delete, name="turn-delete"),
    path(MESSAGE + "text/", conversations.message_text, name="message-text"),
    path("attachments/", attachments.attachment_upload, name="attachment-upload"),
    path(ATTACHMENT, attachments.attachment_file, name="attachment"),
    path(ATTACHMENT + "thumbnail/", attachments.attachment_thumbnail, name="attachment-thumbnail"),
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("usage/", usage.usage_page, name="usage"),
    path("keys/", keys.keys_page, name="api-keys"),
    path("keys/<slug:route>/save/", keys.key_save, name="api-key-save"),
    path("keys/<slug:route>/remove/", keys.key_remove, name="api-key-remove"),
    path("manage/", people.admin_home, name="admin-home"),
    path("manage/people/<int:person_id>/<slug:action>/", people.person_action, name="admin-person"),
    path("admin/", admin.site.urls),
    path("", include("chatapp.web.urls_exchange")),
]
