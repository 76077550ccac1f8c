"""Writes of accounts: sign-up, and what an administrator decides about a person (approve,
refuse, disable, enable, make administrator). Each raises `core.errors.ServiceError` with a
message saying why it cannot be done."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chatapp.core.errors import ServiceError

from .models import Membership


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
