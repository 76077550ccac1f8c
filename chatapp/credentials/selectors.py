"""Reads of keys: the routes a person can use, their key for a route (decrypted, for the run
alone), what the "Your API keys" page shows, and the routes' last errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from chatapp.core import sql
from chatapp.providers import catalog

from . import crypto
from .models import PersonKey, RouteFailure

# The routes a person may hold a key for: the real upstreams, not the offline demo.
KEY_ROUTES = tuple(route for route in catalog.CATALOG if route != "demo")


class PersonRoutes:
    """The routes a person can use: the server's (those with a key in the environment) and
    those they hold a key for, in catalog order. The offline demo is offered only while it is
    the one route. Their keys are read once, and only when a route is asked about that the
    server does not have: a send on a server route reads nothing (bench "turn cost")."""

    def __init__(self, owner_id: int | None) -> None:
        self.owner_id = owner_id
        self._own: frozenset[str] | None = None

    def own(self) -> frozenset[str]:
        if self._own is None:
            self._own = (
                frozenset(
                    PersonKey.objects.filter(owner_id=self.owner_id).values_list("route", flat=True)
                )
                if self.owner_id is not None
                else frozenset()
            )
        return self._own

    def __contains__(self, route: object) -> bool:
        if route in settings.PROVIDERS and route != "demo":
            return True
        own = self.own()
        if route == "demo":
            return "demo" in settings.PROVIDERS and not own
        return route in own and route in settings.ROUTES

    def __iter__(self) -> Iterator[str]:
        return (route for route in catalog.CATALOG if route in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def routes_for(owner_id: int | None) -> PersonRoutes:
    return PersonRoutes(owner_id)


_KEY = sql.Prepared(PersonKey, "owner", "route")


@dataclass(frozen=True, slots=True)
class OwnKey:
    """A person's key as the run uses it: the key, and when it was saved (a rejection marks
    it only if it was not replaced meanwhile)."""

    api_key: str
    updated_at: datetime


def own_key(*, owner_id: int, route: str) -> OwnKey | None:
    """The person's key for the route, decrypted; None when they have none (or it cannot be
    decrypted any more: then the server's key, if any, is used). On the run's database
    thread, once per turn: one prepared statement."""
    row = _KEY.first(owner_id, route)
    if row is None:
        return None
    plain = crypto.decrypt(row.secret)
    return None if plain is None else OwnKey(plain, row.updated_at)


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One route on the "Your API keys" page: never the key, only its last four characters."""

    route: str
    label: str
    last_four: str  # "" when the person has no key for it
    server_has_key: bool
    saved_at: datetime | None
    rejected_at: datetime | None
    rejected_message: str
    unreadable: bool  # stored, but no configured encryption key opens it


def key_rows(*, owner_id: int) -> list[KeyRow]:
    keys = {key.route: key for key in PersonKey.objects.filter(owner_id=owner_id)}
    rows = []
    for route in KEY_ROUTES:
        key = keys.get(route)
        rows.append(
            KeyRow(
                route=route,
                label=catalog.ROUTE_LABELS[route],
                last_four=key.last_four if key else "",
                server_has_key=route in settings.PROVIDERS,
                saved_at=key.updated_at if key else None,
                rejected_at=key.rejected_at if key else None,
                rejected_message=key.rejected_message if key else "",
                unreadable=key is not None and crypto.decrypt(key.secret) is None,
            )
        )
    return rows


def route_failures() -> dict[str, RouteFailure]:
    """The last error each route gave with the server's key (the Admin page)."""
    return {failure.route: failure for failure in RouteFailure.objects.all()}
