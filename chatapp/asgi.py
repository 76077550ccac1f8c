"""ASGI entry point: the SSE consumer route, Django for everything else, and lifespan hooks
that start the run manager (heartbeat, reaper) and save running answers on shutdown."""

from __future__ import annotations

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from chatapp import generation  # noqa: E402
from chatapp.consumers import MessageStreamConsumer  # noqa: E402
from chatapp.middleware import RequestBodyLimit  # noqa: E402

log = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await generation.manager().start()
            except Exception as exc:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await generation.manager().shutdown()
            finally:
                await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                path(
                    "stream/<uuid:message_id>/",
                    AuthMiddlewareStack(MessageStreamConsumer.as_asgi()),
                ),
                re_path(r"", RequestBodyLimit(django_asgi_app)),
            ]
        ),
        "lifespan": lifespan,
    }
)
