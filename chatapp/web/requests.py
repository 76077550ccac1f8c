"""The request every view behind the login gets: an authenticated person, and django-htmx's
details of an htmx request."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthenticatedRequest(HttpRequest):
    """`LoginRequiredMiddleware` lets no anonymous request reach a view not marked
    `@login_not_required`, so `user` is a real account there."""

    user: User
    htmx: HtmxDetails
