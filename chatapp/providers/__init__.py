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


def provider_for(route: str, *, client: httpx.AsyncClient) -> Provider:
    """An adapter instance for a configured route. KeyError if the route is not configured."""
    config = settings.PROVIDERS[route]
    backend: type[Provider] = import_string(config["BACKEND"])
    return backend(alias=route, client=client, **config.get("OPTIONS", {}))
