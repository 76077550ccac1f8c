"""The "Your API keys" page: a person's own key per route, used for their turns in preference
to the server's. A key is never shown back, only its last four characters; one the upstream
refused is marked."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from chatapp.core.errors import ServiceError
from chatapp.credentials import selectors, services
from chatapp.providers.catalog import ROUTE_LABELS

from ..requests import AuthenticatedRequest


@require_GET
def keys_page(request: AuthenticatedRequest) -> HttpResponse:
    return render(request, "chatapp/keys.html", _context(request))


@require_POST
def key_save(request: AuthenticatedRequest, route: str) -> HttpResponse:
    _known(route)
    # Longer than any key, so that the service names the limit rather than a cut key passing.
    raw = request.POST.get("api_key", "")[: services.KEY_MAX_CHARS + 1]
    try:
        services.key_save(owner_id=request.user.pk, route=route, api_key=raw)
    except ServiceError as exc:
        return _answer(request, route=route, error=exc.message)
    return _answer(request, route=route, status=f"Saved your {ROUTE_LABELS[route]} API key.")


@require_POST
def key_remove(request: AuthenticatedRequest, route: str) -> HttpResponse:
    _known(route)
    removed = services.key_remove(owner_id=request.user.pk, route=route)
    label = ROUTE_LABELS[route]
    said = f"Removed your {label} API key." if removed else f"You had no {label} API key."
    return _answer(request, route=route, status=said)


def _known(route: str) -> None:
    if route not in selectors.KEY_ROUTES:
        raise Http404("No such route.")


def _context(request: AuthenticatedRequest, **extra: object) -> dict[str, object]:
    return {"rows": selectors.key_rows(owner_id=request.user.pk), **extra}


def _answer(
    request: AuthenticatedRequest, *, route: str, error: str = "", status: str = ""
) -> HttpResponse:
    """The keys table again (htmx), with what happened said next to the route's row; a form
    sent without htmx gets the page."""
    if not request.htmx and not error:
        return redirect("api-keys")
    context = _context(request, said_for=route, error=error, status=status)
    template = "chatapp/_keys.html" if request.htmx else "chatapp/keys.html"
    return render(request, template, context, status=400 if error else 200)
