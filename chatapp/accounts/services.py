"""Writes of accounts: sign-up, and what an administrator decides about a person (approve,
refuse, disable, enable, make administrator, a monthly budget). Each raises `core.errors.ServiceError` with a
message saying why it cannot be done."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chatapp.core.errors import ServiceError

from .models import BudgetUnit, Membership


def user_signup(*, username: str, password: str, needs_approval: bool) -> User:
    """Create an account. The first account on a server becomes its administrator and is
    approved; later ones wait for an administrator when `needs_approval`."""
    with transaction.atomic():
        if not User.objects.exists():
            return User.objects.create_superuser(username=username, password=password)
        user = User.objects.create_user(username=username, password=password)
        if needs_approval:
            Membership.objects.create(user=user, status=Membership.Status.PENDING)
        return user


def person_approve(*, person: User) -> None:
    _decide(person, Membership.Status.APPROVED)


def person_refuse(*, person: User) -> None:
    _decide(person, Membership.Status.REFUSED)


def _decide(person: User, status: Membership.Status) -> None:
    updated = Membership.objects.filter(user=person, status=Membership.Status.PENDING).update(
        status=status, decided_at=timezone.now()
    )
    if not updated:
        raise ServiceError(f"{person.get_username()} is not awaiting approval.")


def person_disable(*, person: User, by: User) -> None:
    """Disable an account: it cannot sign in, and its sessions end at their next request."""
    if person.pk == by.pk:
        raise ServiceError("You cannot disable your own account.")
    User.objects.filter(pk=person.pk).update(is_active=False)


def person_enable(*, person: User) -> None:
    User.objects.filter(pk=person.pk).update(is_active=True)


def person_make_admin(*, person: User) -> None:
    """Make a person an administrator (Django's superuser): the Admin page, every person."""
    if not person.is_active:
        raise ServiceError(f"{person.get_username()} is disabled: enable the account first.")
    if Membership.objects.filter(user=person).exclude(status=Membership.Status.APPROVED).exists():
        raise ServiceError(f"{person.get_username()} is not approved.")
    User.objects.filter(pk=person.pk).update(is_superuser=True, is_staff=True)


# A budget's limits, each named in its error: no more than a billion (the column holds ten
# digits before the point), cents for dollars, the route's credits to four places (the column's
# scale), and a short text (the number field sends a plain decimal).
BUDGET_MAX = Decimal(1_000_000_000)
BUDGET_PLACES = {BudgetUnit.USD: 2, BudgetUnit.CREDITS: 4}
BUDGET_TEXT_MAX = 32


def person_set_budget(*, person: User, amount: str, unit: str) -> Decimal | None:
    """Set (or, with an empty `amount`, remove) a person's monthly budget, as typed on the
    Admin page: a non-negative decimal in US dollars (`usd`, to the cent) or in the route's
    credits (`credits`, to four places). Sends are refused once the month's answers have used
    it (`turns.limits.check_budget`). Returns the budget saved (None: no limit)."""
    if unit not in BUDGET_PLACES:
        raise ServiceError("Choose the unit of the budget: US dollars or credits.")
    places = BUDGET_PLACES[BudgetUnit(unit)]
    budget = _budget_amount(amount.strip(), unit, places)
    with transaction.atomic():
        # An account without a membership row is approved; the row made here says so.
        Membership.objects.update_or_create(
            user=person, defaults={"monthly_budget": budget, "budget_unit": unit}
        )
    return budget


def _budget_amount(text: str, unit: str, places: int) -> Decimal | None:
    if not text:
        return None
    what = "dollars" if unit == BudgetUnit.USD else "credits"
    if len(text) > BUDGET_TEXT_MAX:
        raise ServiceError(
            f"The monthly budget is {len(text)} characters long; at most {BUDGET_TEXT_MAX}."
        )
    try:
        budget = Decimal(text)
    except InvalidOperation:
        budget = Decimal("NaN")
    if not budget.is_finite():
        raise ServiceError(
            f"The monthly budget must be a number of {what}, such as 5 or 12.50; leave it "
            "empty for no limit."
        )
    if budget < 0:
        raise ServiceError("The monthly budget cannot be negative; leave it empty for no limit.")
    if budget > BUDGET_MAX:
        raise ServiceError(f"The monthly budget can be at most {BUDGET_MAX:,} {what}.")
    step = Decimal(1).scaleb(-places)
    if budget != budget.quantize(step):
        raise ServiceError(
            f"A monthly budget in {what} has at most {places} decimal places "
            f"({'cents' if unit == BudgetUnit.USD else 'ten-thousandths'})."
        )
    # Stored at its scale, and a typed "-0" as plain 0.
    return abs(budget.quantize(step))
