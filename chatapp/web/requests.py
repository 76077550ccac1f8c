"""The request every view behind the login gets: an authenticated person, and django-htmx's
details of an htmx request."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import tzinfo

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from chatapp.credentials.selectors import PersonRoutes


class AuthenticatedRequest(HttpRequest):
    """`LoginRequiredMiddleware` lets no anonymous request reach a view not marked
    `@login_not_required`, so `user` is a real account there."""

    user: User
    htmx: HtmxDetails


# The cookie app.js sets to the browser's IANA time zone ("Europe/Paris"), read to group the
# sidebar by the person's days.
TIMEZONE_COOKIE = "tz"


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def person_timezone(request: HttpRequest) -> tzinfo | None:
    """The person's time zone from the browser, if it sent a real one; None: the server's."""
    name = request.COOKIES.get(TIMEZONE_COOKIE, "")[:64]
    if name not in _zones():
        return None
    return zoneinfo.ZoneInfo(name)


def person_routes(request: AuthenticatedRequest) -> PersonRoutes:
    """The routes the person can use (the server's and their own keys'), once per request:
    every model choice on a page, and the send's check of its model, ask the same one."""
    routes = getattr(request, "_person_routes", None)
    if routes is None:
        routes = PersonRoutes(request.user.pk)
        request._person_routes = routes  # type: ignore[attr-defined]
    return routes
