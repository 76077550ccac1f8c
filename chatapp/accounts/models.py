"""Who may use the server: each account's standing with its administrators."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class BudgetUnit(models.TextChoices):
    USD = "usd", "US dollars"
    CREDITS = "credits", "credits"


class Membership(models.Model):
    """An account that signed up while sign-up needed approval (`DJANGO_SIGNUP=approval`)
    waits until an administrator approves or refuses it. Accounts without a row (made before
    approval existed, by `createsuperuser`, or with sign-up open) are approved. A disabled
    account is Django's own `is_active = False`: it cannot sign in, and its sessions end.
    It also holds the person's monthly budget, when an administrator sets one."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REFUSED = "refused", "Refused"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="membership",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.APPROVED)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # What the person may spend a calendar month (UTC), set by an administrator: in dollars or
    # in the route's credits; none means no limit (turns/limits.py `check_budget`).
    monthly_budget = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    budget_unit = models.CharField(max_length=7, choices=BudgetUnit.choices, default="usd")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.status}"
