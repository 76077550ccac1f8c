"""The "Admin" page: the people of this server and what an administrator decides about them
(approve, refuse, disable, enable, make administrator, a monthly budget), with what each has
used this month, and each route's key and last error. Anyone else gets 404 on every URL here,
as if the page did not exist."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from functools import wraps
from typing import Any

from django.contrib.auth.models import User
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from chatapp.accounts import selectors, services
from chatapp.accounts.models import BudgetUnit
from chatapp.accounts.selectors import Person
from chatapp.core.errors import ServiceError
from chatapp.credentials.models import RouteFailure
from chatapp.providers import catalog
from chatapp.turns import manager
from chatapp.turns.limits import MonthSpent, budget_words, month_spent_by_person
from chatapp.turns.selectors import active_answer_ids

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
    return admin_page(request)


def admin_page(
    request: AuthenticatedRequest, *, error: str = "", status: int = 200
) -> HttpResponse:
    """The whole page; with `error`, a decision refused (a form posted without htmx)."""
    # The last error each route gave with the server's key (credentials writes them).
    failures = {failure.route: failure for failure in RouteFailure.objects.all()}
    routes = [(route, failures.get(route.route)) for route in catalog.route_statuses()]
    context = {**_people_context(error), "routes": routes}
    return render(request, "chatapp/admin.html", context, status=status)


def _people_context(error: str = "") -> dict[str, Any]:
    """The People table: each person with what their answers used this month (UTC)."""
    month = timezone.now().astimezone(UTC).date().replace(day=1)
    spent = month_spent_by_person(month=month)
    people = [
        (person, _used_words(person, spent.get(person.id, MonthSpent())))
        for person in selectors.people_list()
    ]
    return {"people": people, "error": error, "budget_units": BudgetUnit.choices}


def _used_words(person: Person, spent: MonthSpent) -> str:
    """ "$1.20 of $5.00" against a budget; without one, the dollars (and any credits)."""
    if person.monthly_budget is not None:
        unit = person.budget_unit
        return (
            f"{budget_words(spent.of(unit), unit)} of {budget_words(person.monthly_budget, unit)}"
        )
    words = budget_words(spent.usd, BudgetUnit.USD)
    if spent.credits:
        words += f" · {budget_words(spent.credits, BudgetUnit.CREDITS)}"
    return words


def _disable(request: AuthenticatedRequest, person: User) -> None:
    services.person_disable(person=person, by=request.user)
    # Their answers being written stop now, saved as stopped with their text, and their
    # streams end. Here, not in the service: accounts may not import turns.
    for message_id in active_answer_ids(owner_id=person.pk):
        manager.request_stop(message_id)


def _set_budget(request: AuthenticatedRequest, person: User) -> None:
    services.person_set_budget(
        person=person,
        amount=request.POST.get("monthly_budget", ""),
        unit=request.POST.get("budget_unit", ""),
    )


ACTIONS: dict[str, Callable[[AuthenticatedRequest, User], None]] = {
    "approve": lambda request, person: services.person_approve(person=person),
    "refuse": lambda request, person: services.person_refuse(person=person),
    "disable": _disable,
    "enable": lambda request, person: services.person_enable(person=person),
    "make-admin": lambda request, person: services.person_make_admin(person=person),
    "budget": _set_budget,
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
        act(request, person)
    except ServiceError as exc:
        error = exc.message
    if not request.htmx:
        if not error:
            return redirect("admin-home")
        return admin_page(request, error=error, status=400)
    context = _people_context(error)
    return render(request, "chatapp/_people.html", context, status=400 if error else 200)
