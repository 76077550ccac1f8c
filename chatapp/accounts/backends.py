"""The authentication backend: Django's ModelBackend, whose per-request lookup of the signed-in
person is one prepared statement (`core.sql`) instead of a compiled queryset (420 → ~60 µs on
SQLite; every request of a signed-in person makes it)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User

from chatapp.core.sql import Prepared

# The name sessions record for it (`login(backend=...)`, accounts.sessions).
PERSON_BACKEND = "chatapp.accounts.backends.PersonBackend"
_PERSON = Prepared(User, "pk")


class PersonBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        try:
            user = _PERSON.first(user_id)
        except (TypeError, ValueError):
            return None
        return user if user is not None and self.user_can_authenticate(user) else None
