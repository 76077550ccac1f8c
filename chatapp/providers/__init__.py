"""Route adapters behind one ABC (`base.Provider`), configured like Django's STORAGES:
`settings.PROVIDERS` maps a route alias to a BACKEND class path and its OPTIONS."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from .base import Provider


def provider_for(route: str, *, client: httpx.AsyncClient) -> Provider:
    """An adapter instance for a configured route. KeyError if the route is not configured."""
    config = settings.PROVIDERS[route]
    backend: type[Provider] = import_string(config["BACKEND"])
    return backend(alias=route, client=client, **config.get("OPTIONS", {}))


def new_http_client() -> httpx.AsyncClient:
    """The client adapters share: explicit timeouts, redirects off (SECURITY 13), and a pool
    large enough for many concurrent streams."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(**settings.UPSTREAM_TIMEOUTS),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=4096, max_keepalive_connections=256),
        trust_env=False,
    )
