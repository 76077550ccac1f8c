"""Django's requests under ASGI (chatapp.asgi): each runs on a pooled request thread with its
request_started and request_finished sent there, as under WSGI; no thread is started for a
request; a client that goes away stops a streamed response being made; a request is freed
with its response, not by the garbage collector."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.http import HttpRequest, HttpResponseBase

from chatapp import asgi
from chatapp.core.threads import SYNC_THREADS
from chatapp.web.responses import ThreadedStreamingHttpResponse
from tests.conftest import http_scope


async def _get(path: str) -> int:
    request = ApplicationCommunicator(asgi.application, http_scope(path))
    await request.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await request.receive_output(10)
    while (await request.receive_output(10)).get("more_body"):
        pass
    return start["status"]


async def request_threads_idle() -> None:
    """Every request thread has let go of the job it ran last. A pool thread reports a job's
    result (which wakes the loop) before it drops the job, and with it the job's arguments,
    the request among them: an idle thread is past that (`WarmThreads.wait_idle`)."""
    assert SYNC_THREADS.wait_idle(len(SYNC_THREADS._threads), timeout=10)


@pytest.fixture
def signal_threads() -> Iterator[list[tuple[str, str]]]:
    sent: list[tuple[str, str]] = []

    def started(**kwargs: Any) -> None:
        sent.append(("started", threading.current_thread().name))

    def finished(**kwargs: Any) -> None:
        sent.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield sent
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


@pytest.mark.django_db(transaction=True)
async def test_a_request_sends_its_signals_on_the_request_thread_and_starts_no_thread(
    signal_threads, monkeypatch
):
    for _ in range(10):  # the pool's threads, started once
        assert await _get("/healthz") == 200
    signal_threads.clear()
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(5):
        assert await _get("/healthz") == 200
    # None per request: only the pool may still grow (a request that finds its one thread
    # not yet idle again starts a second, as the PostgreSQL pass saw once).
    assert [name for name in started if not name.startswith("chat-sync")] == []
    assert len(started) <= 1
    assert [kind for kind, _ in signal_threads] == ["started", "finished"] * 5
    assert all(name.startswith("chat-sync") for _, name in signal_threads)


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_goes_away_stops_a_streamed_response(signal_threads, monkeypatch):
    made = 0
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        nonlocal made
        try:
            while True:
                made += 1
                yield b"x" * 100
        finally:
            closed.set()

    def streamed(self: Any, request: HttpRequest) -> HttpResponseBase:
        return ThreadedStreamingHttpResponse(endless())

    monkeypatch.setattr(asgi.SyncChainASGIHandler, "get_response", streamed)
    request = ApplicationCommunicator(asgi.application, http_scope("/healthz"))
    await request.send_input({"type": "http.request", "body": b"", "more_body": False})
    assert (await request.receive_output(10))["status"] == 200
    assert (await request.receive_output(10))["body"] == b"x" * 100
    await request.send_input({"type": "http.disconnect"})
    assert await asyncio.to_thread(closed.wait, 10)
    await request.wait(10)
    at_close = made
    await asyncio.sleep(0)
    assert made == at_close
    # The response was closed: request_finished, on a request thread.
    assert ("finished", signal_threads[-1][1]) == signal_threads[-1]
    assert signal_threads[-1][1].startswith("chat-sync")


@pytest.mark.django_db(transaction=True)
async def test_a_request_is_freed_with_its_response_without_the_garbage_collector(monkeypatch):
    """Django's middleware put a request in cycles (the lazy `request.user` closes over it),
    and a client that hangs up after its response (the server then answers the listener's
    receive with a disconnect, as Uvicorn does) raised the listener's RequestAborted in the
    handler's frame, which held the request: either way it waited for the collector."""
    requests: list[weakref.ref[HttpRequest]] = []
    real_create = asgi.SyncChainASGIHandler.create_request

    def create_request(self: Any, scope: Any, body_file: Any) -> Any:
        request, refusal = real_create(self, scope, body_file)
        if request is not None:
            requests.append(weakref.ref(request))
        return request, refusal

    monkeypatch.setattr(asgi.SyncChainASGIHandler, "create_request", create_request)

    async def get(path: str) -> int:
        sent = asyncio.Event()
        received = 0
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal received
            received += 1
            if received == 1:
                return {"type": "http.request", "body": b"", "more_body": False}
            await sent.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            elif not message.get("more_body"):
                sent.set()

        await asgi.django_asgi_app(http_scope(path), receive, send)
        return statuses[0]

    assert await get("/healthz") == 200  # the pool's thread, its connection: made once
    gc.collect()
    gc.disable()
    try:
        requests.clear()
        for _ in range(3):
            assert await get("/healthz") == 200
        await request_threads_idle()
        assert [ref() for ref in requests] == [None, None, None]
    finally:
        gc.enable()


@pytest.mark.django_db(transaction=True)
async def test_the_servers_startup_freezes_what_it_made_for_the_collector_once(monkeypatch):
    """A full collection walked every object the process had made starting up, a pause of
    every stream; frozen, it walks only what came since. A second server in the process (the
    tests' live servers) freezes nothing more: what lived since is not kept from collection."""
    asgi._freeze_what_startup_made.cache_clear()  # as in a process that never started one
    gc.unfreeze()

    async def start_and_stop() -> None:
        server = ApplicationCommunicator(asgi.application, {"type": "lifespan"})
        await server.send_input({"type": "lifespan.startup"})
        assert (await server.receive_output(10))["type"] == "lifespan.startup.complete"
        await server.send_input({"type": "lifespan.shutdown"})
        assert (await server.receive_output(10))["type"] == "lifespan.shutdown.complete"

    await start_and_stop()
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # Django, its apps, the modules
    await start_and_stop()
    assert gc.get_freeze_count() <= frozen  # frozen objects freed since leave it
