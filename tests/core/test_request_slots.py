"""Requests wait their turn on the event loop (chatapp.asgi): at most CHAT_REQUEST_CONCURRENCY
views run at once, so a burst of sends cannot crowd the loop that relays every stream out of
the GIL."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.http import HttpRequest, HttpResponse

from chatapp import asgi
from tests.conftest import http_scope


@pytest.mark.parametrize("limit", [1, 2])
async def test_no_more_views_run_at_once_than_the_limit(limit: int, settings, monkeypatch):
    settings.CHAT_REQUEST_CONCURRENCY = limit
    inside, peak = 0, 0
    lock = threading.Lock()
    entered = threading.Semaphore(0)
    release = threading.Event()

    def held_view(self: Any, request: HttpRequest) -> HttpResponse:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        entered.release()
        release.wait(10)
        with lock:
            inside -= 1
        return HttpResponse("ok")

    monkeypatch.setattr(asgi.SyncChainASGIHandler, "_get_response_here", held_view)
    requests = [ApplicationCommunicator(asgi.application, http_scope("/healthz")) for _ in range(5)]
    for request in requests:
        await request.send_input({"type": "http.request", "body": b"", "more_body": False})
    for _ in range(limit):
        assert await asyncio.to_thread(entered.acquire, True, 10)
    # The rest wait on the loop: none gets into a view while these are held.
    assert not await asyncio.to_thread(entered.acquire, True, 0.3)
    release.set()
    for request in requests:
        start = await request.receive_output(10)
        assert start["status"] == 200
        await request.receive_output(10)
    assert peak == limit
