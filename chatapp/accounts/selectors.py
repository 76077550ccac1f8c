"""Reads of accounts: a person's standing, and the people an administrator manages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import F

from .models import Membership


def standing(*, user: User) -> str:
    """`approved`, `pending` or `refused` (an account without a membership row is approved)."""
    status = Membership.objects.filter(user=user).values_list("status", flat=True).first()
    return status or Membership.Status.APPROVED


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    username: str
    joined: datetime
    status: str  # approved / pending / refused
    is_active: bool
    is_admin: bool
    last_login: datetime | None


def people_list() -> list[Person]:
    """Everyone, those awaiting approval first, then by name (one query)."""
    rows = User.objects.annotate(standing=F("membership__status")).values_list(
        "id", "username", "date_joined", "standing", "is_active", "is_superuser", "last_login"
    )
    people = [
        Person(
            id=row[0],
            username=row[1],
            joined=row[2],
            status=row[3] or Membership.Status.APPROVED,
            is_active=row[4],
            is_admin=row[5],
            last_login=row[6],
        )
        for row in rows
    ]
    people.sort(key=lambda p: (p.status != Membership.Status.PENDING, p.username.lower()))
    return people
