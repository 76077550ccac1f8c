"""Deny-by-default login, security headers, and the request-body limit."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django_htmx.http import HttpResponseClientRedirect

from chatapp.attachments.images import megabytes
from chatapp.core.asgi_types import ASGIApp, ASGIMessage, Receive, Scope, Send

# No inline script or style anywhere; images only from this origin (plus data:/blob: for
# previews of images being attached), so markdown in an answer cannot load a tracking pixel.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def client_address(request: HttpRequest) -> str:
    """The client's address, for log-in throttling. Behind TLS (DJANGO_HTTPS) the app sits
    behind one proxy, which appends the client to X-Forwarded-For: its last entry is the one
    the client cannot forge. Otherwise REMOTE_ADDR, and a forwarded header is not believed."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.HTTPS and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))


class SecurityHeadersMiddleware:
    """The CSP on every response, and `Cache-Control: private, no-store` on what a signed-in
    person is shown, unless the view said otherwise (their images cache privately): a shared
    cache or the back button on a shared computer must not keep someone's conversations. The
    chain runs synchronously (chatapp.asgi)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        user = getattr(request, "user", None)
        if not response.has_header("Cache-Control") and user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every view needs a login unless marked `@login_not_required` (Django 5.1+). htmx
    requests get a full-page redirect instead of a login form swapped into a fragment."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        response = super().process_view(request, view_func, view_args, view_kwargs)
        if response is not None and getattr(request, "htmx", False):
            return HttpResponseClientRedirect(resolve_url(settings.LOGIN_URL), status=401)
        return response


class RequestBodyLimit:
    """ASGI middleware: refuse a request body over `CHAT_MAX_REQUEST_BODY_BYTES` (413) before
    Django reads it. Django's ASGI handler spools any body to a temporary file first, so
    without this a single request could fill the disk before the upload view says no."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @functools.cached_property
    def import_path(self) -> str:
        # Once: reverse() here, on the event loop ahead of every request, was ~0.2 ms of a
        # short turn's CPU (py-spy).
        return reverse("conversations-import")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = settings.CHAT_MAX_REQUEST_BODY_BYTES, "an image"
        allowed = settings.CHAT_IMAGE_LIMITS["max_bytes"]
        if scope.get("path") == self.import_path:
            # The import page takes an export file, with a limit of its own.
            limit, what = settings.CHAT_MAX_IMPORT_BODY_BYTES, "an import"
            allowed = settings.CHAT_LIMITS["import_bytes"]
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(
                send, f"This upload is {megabytes(int(declared))}", allowed=allowed, what=what
            )
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> ASGIMessage:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django sees a client that went away and stops reading; we answer.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: ASGIMessage) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await self._refuse(
                send, f"This upload is over {megabytes(limit)}", allowed=allowed, what=what
            )

    async def _refuse(self, send: Send, size: str, *, allowed: int, what: str) -> None:
        body = f"{size}; the limit is {megabytes(allowed)} for {what}.".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
