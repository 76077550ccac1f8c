"""Responses several views share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from django.db import connections
from django.http import HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django_htmx.http import reswap, retarget

from chatapp.conversations import selectors
from chatapp.conversations.models import Conversation

from .requests import AuthenticatedRequest
from .settings_panel import SettingsForm, settings_feedback


def composer_error(
    message: str,
    status: int,
    form: SettingsForm | None = None,
    request: AuthenticatedRequest | None = None,
) -> HttpResponse:
    """An error shown above the composer; the typed message stays in the textbox. With the
    settings form, its errors are marked in the panel too."""
    context: dict[str, object] = {"message": message}
    if form is not None and request is not None:
        context.update(settings_feedback(request, form))
    response = HttpResponse(
        render_to_string("chatapp/_composer_error.html", context), status=status
    )
    return reswap(retarget(response, "#composer-error"), "innerHTML")


def plain_error(message: str, status: int) -> HttpResponse:
    """A refusal as plain text (the upload XHR shows it as text)."""
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def whole_thread(request: AuthenticatedRequest, conversation: Conversation) -> HttpResponse:
    """The thread's first page in place of all it shows: what a version switch or a deleted
    turn answers with when the branch that follows is longer than a page."""
    html = render_to_string(
        "chatapp/_thread_page.html",
        {"conversation": conversation, "page": selectors.thread_page(conversation=conversation)},
        request=request,
    )
    return reswap(retarget(HttpResponse(html), "#thread"), "innerHTML")


class ThreadedStreamingHttpResponse(StreamingHttpResponse):
    """A streaming response whose (synchronous) pieces are made one at a time on a thread of
    its own when served over ASGI: Django's own response would first read the whole iterator
    into a list, so an export of any size would sit in memory at once. The thread keeps the
    database connection its reads use, and closes it when the response ends or the browser
    goes away. Served synchronously (tests, WSGI), it is Django's own."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-stream")
        pieces = iter(cast(Iterator[bytes], self.streaming_content))
        source = getattr(self, "_iterator", None)

        def finish() -> None:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            connections.close_all()

        try:
            while True:
                piece = await loop.run_in_executor(worker, next, pieces, None)
                if piece is None:
                    break
                yield piece
        finally:
            await asyncio.shield(loop.run_in_executor(worker, finish))
            worker.shutdown(wait=False)
