"""Route adapters behind one ABC (`base.Provider`), configured like Django's STORAGES:
`settings.PROVIDERS` maps a route alias to a BACKEND class path and its OPTIONS.

Neutral values (`types`), the error tree (`errors`), the parameter registry (`params`) and the
model catalog (`catalog`) are what the rest of the app sees; the wire formats stay inside the
adapters (`openai_compat`, `gemini/`, `demo`)."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from .base import Provider


def provider_for(route: str, *, client: httpx.AsyncClient, api_key: str | None = None) -> Provider:
    """An adapter instance for a route: with the server's key (KeyError if the route is not
    configured), or with `api_key`, a person's own (`settings.ROUTES` says where the route
    is when the server has no key for it)."""
    if api_key is None:
        config = settings.PROVIDERS[route]
        options = config.get("OPTIONS", {})
    else:
        config = settings.PROVIDERS.get(route) or settings.ROUTES[route]
        options = {**config.get("OPTIONS", {}), "api_key": api_key}
    backend: type[Provider] = import_string(config["BACKEND"])
    return backend(alias=route, client=client, **options)
