"""Reads of accounts: a person's standing, and the people an administrator manages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import F

from .models import BudgetUnit, Membership


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
    monthly_budget: Decimal | None = None  # None: no limit
    budget_unit: str = BudgetUnit.USD

    @property
    def budget_text(self) -> str:
        """The budget as the Admin page's number field shows it: "5.00", "1000.5", or ""."""
        if self.monthly_budget is None:
            return ""
        if self.budget_unit == BudgetUnit.USD:
            return f"{self.monthly_budget:.2f}"
        text = f"{self.monthly_budget:f}"
        return text.rstrip("0").rstrip(".") if "." in text else text


def people_list() -> list[Person]:
    """Everyone, those awaiting approval first, then by name, with their monthly budgets
    (one query)."""
    rows = User.objects.annotate(
        standing=F("membership__status"),
        budget=F("membership__monthly_budget"),
        unit=F("membership__budget_unit"),
    ).values_list(
        "id",
        "username",
        "date_joined",
        "standing",
        "is_active",
        "is_superuser",
        "last_login",
        "budget",
        "unit",
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
            monthly_budget=row[7],
            budget_unit=row[8] or BudgetUnit.USD,
        )
        for row in rows
    ]
    people.sort(key=lambda p: (p.status != Membership.Status.PENDING, p.username.lower()))
    return people
