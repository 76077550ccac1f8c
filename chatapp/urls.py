from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat_home, name="chat-home"),
    path("healthz", views.healthz, name="healthz"),
    path("settings/check/", views.settings_check, name="settings-check"),
    path("sidebar/", views.sidebar_more, name="sidebar-more"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="conversation-detail"),
    path("c/<uuid:conversation_id>/older/", views.conversation_older, name="conversation-older"),
    path("c/<uuid:conversation_id>/messages/", views.turn_create, name="turn-create"),
    path("c/<uuid:conversation_id>/stop/", views.turn_stop, name="turn-stop"),
    path(
        "c/<uuid:conversation_id>/settings/",
        views.conversation_settings,
        name="conversation-settings",
    ),
    path("c/<uuid:conversation_id>/pin/", views.conversation_pin, name="conversation-pin"),
    path("c/<uuid:conversation_id>/delete/", views.conversation_delete, name="conversation-delete"),
    path(
        "c/<uuid:conversation_id>/m/<uuid:message_id>/retry/",
        views.message_retry,
        name="message-retry",
    ),
    path(
        "c/<uuid:conversation_id>/m/<uuid:message_id>/continue/",
        views.message_continue,
        name="message-continue",
    ),
    path("attachments/", views.attachment_upload, name="attachment-upload"),
    path("attachments/<uuid:attachment_id>/", views.attachment_file, name="attachment"),
    path(
        "attachments/<uuid:attachment_id>/thumbnail/",
        views.attachment_thumbnail,
        name="attachment-thumbnail",
    ),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("admin/", admin.site.urls),
]
