"""Writes of accounts."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction


def user_signup(*, username: str, password: str) -> User:
    """Create an account; the first account on a server becomes its superuser."""
    with transaction.atomic():
        if not User.objects.exists():
            return User.objects.create_superuser(username=username, password=password)
        return User.objects.create_user(username=username, password=password)
