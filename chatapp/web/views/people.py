"""The "Admin" page: the people of this server and what an administrator decides about them
(approve, refuse, disable, enable, make administrator). Anyone else gets 404 on every URL here,
as if the page did not exist."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.models import User
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from chatapp.accounts import selectors, services
from chatapp.core.errors import ServiceError
from chatapp.providers import catalog

from ..requests import AuthenticatedRequest

View = Callable[..., HttpResponse]


def administrators_only(view: View) -> View:
    @wraps(view)
    def wrapped(request: AuthenticatedRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not (request.user.is_active and request.user.is_superuser):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@administrators_only
def admin_home(request: AuthenticatedRequest) -> HttpResponse:
    context = {"people": selectors.people_list(), "routes": catalog.route_statuses()}
    return render(request, "chatapp/admin.html", context)


ACTIONS: dict[str, Callable[[User, User], None]] = {
    "approve": lambda person, by: services.person_approve(person=person),
    "refuse": lambda person, by: services.person_refuse(person=person),
    "disable": lambda person, by: services.person_disable(person=person, by=by),
    "enable": lambda person, by: services.person_enable(person=person),
    "make-admin": lambda person, by: services.person_make_admin(person=person),
}


@require_POST
@administrators_only
def person_action(request: AuthenticatedRequest, person_id: int, action: str) -> HttpResponse:
    """One decision about one person; answered with the people table (htmx) or the page."""
    act = ACTIONS.get(action)
    if act is None:
        raise Http404("No such action.")
    person = get_object_or_404(User, pk=person_id)
    error = ""
    try:
        act(person, request.user)
    except ServiceError as exc:
        error = exc.message
    if not request.htmx:
        return redirect("admin-home")
    context = {"people": selectors.people_list(), "error": error}
    return render(request, "chatapp/_people.html", context, status=400 if error else 200)
