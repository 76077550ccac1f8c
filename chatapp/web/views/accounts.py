"""Health, log in, sign up (open, closed, or awaiting an administrator's approval)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chatapp.accounts.backends import PERSON_BACKEND
from chatapp.accounts.models import Membership
from chatapp.accounts.selectors import standing
from chatapp.accounts.services import user_signup

from ..forms import LoginForm, SignupForm


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    connection.ensure_connection()
    return HttpResponse("ok", content_type="text/plain")


class LoginView(auth_views.LoginView):
    authentication_form = LoginForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        allow_signup = settings.SIGNUP != "closed"
        return {**super().get_context_data(**kwargs), "allow_signup": allow_signup}


def locked_out(
    request: HttpRequest, response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' refusal of a log-in after too many failures, saying when to try again."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)


@login_not_required
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    """Sign-up as `DJANGO_SIGNUP` says: open, closed, or with an administrator's approval
    (then the new account is told so, and is not signed in)."""
    if settings.SIGNUP == "closed":
        return render(request, "registration/signup_closed.html", status=403)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_signup(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password1"],
            needs_approval=settings.SIGNUP == "approval",
        )
        if standing(user=user) == Membership.Status.PENDING:
            return render(request, "registration/awaiting_approval.html", {"person": user})
        login(request, user, backend=PERSON_BACKEND)
        return redirect("chat-home")
    # The first account is the administrator's, approved by making it.
    needs_approval = settings.SIGNUP == "approval" and User.objects.exists()
    context = {"form": form, "needs_approval": needs_approval}
    return render(request, "registration/signup.html", context)
