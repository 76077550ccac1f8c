"""ASGI entry point: the SSE consumer route, Django for everything else, and lifespan hooks
that start the run manager (heartbeat, reaper) and save running answers on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpRequest, HttpResponseBase
from django.urls import set_script_prefix

from chatapp.core.asgi_types import Receive, Scope, Send
from chatapp.core.threads import SYNC_THREADS

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
django.setup(set_prefix=False)

# A request thread waiting for the GIL while the event loop relays hundreds of streams waits
# up to the switch interval at every handover (each database call is one); 5 ms by default.
sys.setswitchinterval(0.0005)


# Requests run on the pooled threads that runs' database work uses too (`SYNC_THREADS`), so
# each thread's database connection is reused across requests (Django's per-request thread
# under ASGI opens one every time: on SQLite that is a connect, four PRAGMAs and ~30 SQL
# functions registered), and one warm thread serves a whole turn at low load.
# Image uploads run on threads of their own: decoding one can take seconds, and 16 parallel
# uploads of a 49-megapixel PNG on the request threads kept another person's /healthz waiting
# 6.2 s. Three: two decode (attachments.images decodes two at a time) while the third turns
# away a person's uploads past their two at once, so nobody queues behind one person's burst.
UPLOAD_THREADS = ThreadPoolExecutor(max_workers=3, thread_name_prefix="chat-upload")
UPLOAD_PATH = "/attachments/"
# asgiref types its executor as a ThreadPoolExecutor; it only hands it to run_in_executor.
_SYNC_EXECUTOR = cast(ThreadPoolExecutor, SYNC_THREADS)


_SLOTS: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _request_slots() -> asyncio.Semaphore:
    """At most `CHAT_REQUEST_CONCURRENCY` requests run their view at once; the others wait
    on the event loop, where waiting costs nothing. Each running request thread takes its
    turn at the GIL with the loop that relays every stream, so with all eight threads busy
    (a burst of sends) the relay got one turn in nine: 100 sends arriving within a second
    delayed chunks of the streams already running by up to ~1 s (bench "turn cost")."""
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(settings.CHAT_REQUEST_CONCURRENCY)
    return slots


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the middleware chain built in synchronous mode and run in
    one thread per request, as Django's WSGI path runs it.

    Every view here is synchronous (the streaming lives in the SSE consumer and the runs).
    In async mode each of Django's MiddlewareMixin middlewares switches threads twice per
    request. Measured round trip of a health check: 2.9 ms with the async chain, 1.8 ms with
    the sync chain, and less again with threads that keep their connection (bench/README.md).
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Django enters a ThreadSensitiveContext per request, so its own thread-sensitive
        # calls (the request_started receivers, response.close) run on a thread started for
        # that request and joined at its end, the event loop waiting for both: ~0.7 ms of a
        # 10.5 ms turn (py-spy). Here the request's signals are sent on its pool thread, as
        # WSGI sends them, and nothing else needs a thread of its own.
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP, not {scope['type']}")
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Django's `ASGIHandler.handle` without its thread-sensitive hops."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            refusal = cast(HttpResponseBase, error_response)  # a body too big, a bad header
            body_file.close()
            await self.send_response(refusal, send)
            await self._on_request_thread(refusal.close)
            return

        async def process_request() -> HttpResponseBase:
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away
                await self.send_response(response, send)
            return response

        # As in Django: a client that disconnects cancels the response being sent (a
        # streamed export stops being made).
        processing = asyncio.create_task(process_request())
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), processing]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                # Looked at, not raised: raising the listener's RequestAborted here would add
                # this frame to its traceback, which the task keeps: a cycle through `tasks`
                # holding the request and its response until the garbage collector ran. With
                # the two other cycles gone (the request's, the consumer's heartbeat), a turn
                # leaves ~70 objects for the collector, not ~220 (bench.ab, CPU per short
                # turn: B/A 0.968 median, 0.984 of the sums, 40 rounds).
                error = task.exception()  # CancelledError if cancelled, as result() did
                if error is not None and not isinstance(error, RequestAborted):
                    if isinstance(error, AssertionError):
                        body_file.close()
                    raise error
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = processing.result()
        except asyncio.CancelledError:
            await self._on_request_thread(signals.request_finished.send, sender=self.__class__)
        else:
            if response.streaming:
                await self._on_request_thread(response.close)
        body_file.close()

    async def _on_request_thread(self, call: Callable[..., object], **kwargs: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(
            SYNC_THREADS, functools.partial(call, **kwargs)
        )

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if request.method == "POST" and request.path_info == UPLOAD_PATH:
            return await sync_to_async(
                self._get_response_here, thread_sensitive=False, executor=UPLOAD_THREADS
            )(request)
        async with _request_slots():
            # The runs a view starts are started here, on the loop (turns.manager.launch).
            return await manager.launches_after(
                lambda: sync_to_async(
                    self._get_response_here, thread_sensitive=False, executor=_SYNC_EXECUTOR
                )(request)
            )

    def _get_response_here(self, request: HttpRequest) -> HttpResponseBase:
        # Django's request_started and request_finished, in the thread that uses the
        # connections, as under WSGI: their receivers drop broken or expired connections
        # (CONN_MAX_AGE, health checks) and reset what is per thread. A response already
        # made is closed here; a streamed one once it is sent (`handle`).
        signals.request_started.send(sender=self.__class__, scope=getattr(request, "scope", None))
        try:
            response = self.get_response(request)
        except BaseException:
            signals.request_finished.send(sender=self.__class__)
            raise
        if not response.streaming:
            response.close()
            # Done with. Django's middleware leave the request in cycles (the lazy
            # `request.user` closes over it, as `request.htmx` and the messages storage hold
            # it), so it and what they attached (the session, the person) waited for the
            # garbage collector; emptied, it is freed with its response.
            request.__dict__.clear()
        return response


django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from chatapp.turns import manager  # noqa: E402
from chatapp.turns.consumer import MessageStreamConsumer  # noqa: E402
from chatapp.turns.live import ConversationStreamConsumer  # noqa: E402
from chatapp.web.middleware import RequestBodyLimit  # noqa: E402

log = logging.getLogger(__name__)


@functools.cache  # once a process
def _freeze_what_startup_made() -> None:
    # What is alive once the server has started (Django, its apps, the modules: ~83,000
    # objects) lives as long as the process: the collector need not walk it. Unfrozen, each
    # full collection walked all of it, holding the GIL: the one in each run of the peers
    # bench's burst took 51 and 66 ms of CPU (gc.callbacks), 13 and 17 ms frozen, a stall of
    # every stream. The garbage startup left is collected first, not kept. Once a process: a
    # server started again in it (the tests' live servers) would freeze what has lived since.
    gc.collect()
    gc.freeze()


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await manager.manager().start()
            except Exception as exc:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            _freeze_what_startup_made()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await manager.manager().shutdown()
            finally:
                await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                # No AuthMiddlewareStack: it wraps every send of every frame; the consumer
                # checks the session cookie itself, once, when the browser connects.
                path("stream/<uuid:message_id>/", MessageStreamConsumer.as_asgi()),
                path("stream/c/<uuid:conversation_id>/", ConversationStreamConsumer.as_asgi()),
                # Channels routes to ASGI apps through Django's path(); the stubs type it for
                # views only.
                re_path(r"", cast(Any, RequestBodyLimit(django_asgi_app))),
            ]
        ),
        "lifespan": lifespan,
    }
)
