"""Shared fixtures: accounts, routes pointed at the fake upstream, the run manager, SSE clients,
a statement counter, and for browser tests a live Uvicorn server, Chromium and page helpers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import Client

pytest_plugins = ["tests.fakes.fixtures", "tests.provider_kit"]

API_KEY = "sk-test-3f9c2a71d4e8b6a0c5d1e7f2"


# --- Static files, as in production -----------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    """Templates resolve `{% static %}` through the manifest storage, as in production.
    Collected before any test module is imported: a module that imports `chatapp.asgi` builds
    WhiteNoise, which lists STATIC_ROOT once, so on a clean checkout a later collect would leave
    every asset a 404 (the CI failure of 2026-12-01)."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _close_db_pool_before_teardown(django_db_setup: Any) -> Iterator[None]:
    """PostgreSQL's connection pool is shared by all threads; it must let go of the test
    database before pytest-django drops it."""
    yield
    # Connections are per thread: the ones asgiref's thread (sync_to_async) and the app's
    # database threads hold stay checked out until closed in those threads.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
    from chatapp.core import db

    db.on_every_thread(connections.close_all)
    for conn in connections.all():
        if getattr(conn, "pool", None) is not None:
            conn.close_pool()


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Uploads of each test in a directory of their own, never in var/media."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    return settings.MEDIA_ROOT


# --- Accounts ---------------------------------------------------------------------------------


def attachment_row(owner: Any, byte_size: int = 1000) -> Any:
    """An attachment's row with no file behind it, for code that reads only its metadata."""
    from chatapp.models import Attachment

    name = uuid.uuid4().hex
    return Attachment.objects.create(
        owner=owner,
        sha256=name * 2,
        file_name=f"attachments/{name}.jpg",
        thumbnail_name=f"attachments/{name}.thumb.jpg",
        mime_type="image/jpeg",
        width=40,
        height=30,
        byte_size=byte_size,
    )


@pytest.fixture
def user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123!")


@pytest.fixture
def other_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="mallory", password="pw-mallory-123!")


@pytest.fixture
def user_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Routes -----------------------------------------------------------------------------------


@pytest.fixture
def aimlapi(settings: Any, fake_upstream: Any) -> Any:
    """The AI/ML API route, pointed at the fake upstream, as the only route."""
    settings.PROVIDERS = {
        "aimlapi": {
            "BACKEND": "chatapp.providers.openai_compat.OpenAICompatProvider",
            "OPTIONS": {"api_key": API_KEY, "base_url": fake_upstream.openai_base_url},
        }
    }
    return fake_upstream


@pytest.fixture
def all_routes(settings: Any, aimlapi: Any) -> Any:
    """AI/ML API, Google and Segmind, all pointed at the fake upstream (after `aimlapi`, which
    the live server's fixture also sets up). Segmind reports its wait every 50 ms and shows
    its answer at once."""
    settings.PROVIDERS = {
        **settings.PROVIDERS,
        "gemini": {
            "BACKEND": "chatapp.providers.gemini.google.GeminiProvider",
            "OPTIONS": {"api_key": API_KEY, "base_url": aimlapi.gemini_base_url},
        },
        "segmind": {
            "BACKEND": "chatapp.providers.gemini.segmind.SegmindProvider",
            "OPTIONS": {
                "api_key": API_KEY,
                "base_url": aimlapi.segmind_base_url,
                "status_interval": 0.05,
                "reveal_seconds": 0,
            },
        },
    }
    return aimlapi


@pytest.fixture
def fast_runs(settings: Any) -> dict[str, Any]:
    """Short retry waits so fault tests finish quickly (the logic is unchanged)."""
    settings.CHAT_RUN = {**settings.CHAT_RUN, "retry_backoff": 0.01, "retry_max_wait": 0.05}
    return settings.CHAT_RUN


# --- Async plumbing ---------------------------------------------------------------------------


@pytest.fixture
async def run_manager() -> Any:
    """The run manager of this test's event loop, shut down (runs saved) afterwards."""
    from chatapp.turns.manager import manager

    layer = get_channel_layer()
    await layer.flush()
    runs = manager()
    await runs.start()
    yield runs
    await runs.shutdown(timeout=5)
    await layer.flush()


# --- SSE client over the real ASGI application -----------------------------------------------


@dataclass
class SSEEvent:
    event: str
    data: str
    id: str | None


@dataclass
class SSEStream:
    """An SSE response read event by event from `chatapp.asgi.application`."""

    communicator: ApplicationCommunicator
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    body: bytes = b""
    _buffer: bytes = b""
    ended: bool = False
    # The HTML of the blocks `blocks` events brought, in order (what the page shows).
    blocks: list[str] = field(default_factory=list)

    async def start(self, timeout: float = 5) -> None:
        await self.communicator.send_input(
            {"type": "http.request", "body": b"", "more_body": False}
        )
        start = await self.communicator.receive_output(timeout)
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = dict(start["headers"])

    async def attached(self, timeout: float = 5) -> None:
        """Wait until the consumer is attached to the running generation (`: live`)."""
        while "live" not in self.comments:
            if b"\n\n" not in self._buffer:
                await self._read(timeout)
                continue
            raw, self._buffer = self._buffer.split(b"\n\n", 1)
            event = self._parse(raw.decode())
            assert event is None, f"an event before the stream was live: {event}"

    async def _read(self, timeout: float) -> None:
        assert not self.ended, "the stream ended"
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "http.response.body", message
        self.body += message.get("body", b"")
        self._buffer += message.get("body", b"")
        if not message.get("more_body", False):
            self.ended = True

    async def next_event(self, timeout: float = 5) -> SSEEvent | None:
        """The next event, or None when the response ended."""
        while True:
            if b"\n\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n\n", 1)
                event = self._parse(raw.decode())
                if event is not None:
                    return event
                continue
            if self.ended:
                return None
            await self._read(timeout)

    def _parse(self, raw: str) -> SSEEvent | None:
        event, data, event_id = "message", [], None
        for line in raw.split("\n"):
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith("id: "):
                event_id = line[4:]
        if not data:
            return None
        return SSEEvent(event, "\n".join(data), event_id)

    async def read_until_terminal(self, timeout: float = 10) -> tuple[str, SSEEvent]:
        """All delta text up to the terminal event, and that event."""
        text = []
        while True:
            event = await self.next_event(timeout)
            assert event is not None, "the stream ended without a terminal event"
            if event.event == "delta":
                text.append(json.loads(event.data)["t"])
            elif event.event == "blocks":
                self.blocks.append(json.loads(event.data)["h"])
            elif event.event in ("done", "error"):
                return "".join(text), event

    async def disconnect(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(timeout=5)


def session_cookie(client: Client) -> bytes:
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def open_stream(
    message_id: uuid.UUID,
    *,
    cookie: bytes | None = None,
    after: int | None = None,
    last_event_id: str | None = None,
    path: str | None = None,
    query: str | None = None,
    send_through: Callable[[Any], Awaitable[None]] | None = None,
) -> SSEStream:
    """An answer's stream (or, with `path`, another SSE endpoint); `send_through`, if given,
    stands between the app and the socket (each ASGI message passes through it)."""
    from chatapp.asgi import application

    app: Any = application
    if send_through is not None:
        through = send_through

        async def app(scope: Any, receive: Any, send: Any) -> None:
            async def send_via(message: Any) -> None:
                await through(message)
                await send(message)

            await application(scope, receive, send_via)

    path = path or f"/stream/{message_id}/"
    if query is None:
        query = "" if after is None else f"after={after}"
    headers = [(b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    if last_event_id is not None:
        headers.append((b"last-event-id", last_event_id.encode()))
    return SSEStream(ApplicationCommunicator(app, http_scope(path, query, headers)))


def http_scope(
    path: str, query: str = "", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    """The ASGI scope of a GET from a browser on the test server."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers if headers is not None else [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


@pytest.fixture
def cookie(user_client: Client) -> bytes:
    return session_cookie(user_client)


# --- Counting SQL statements ------------------------------------------------------------------


class StatementLog:
    """Every SQL statement run on any connection, in any thread, while installed."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with self._lock:
            self.statements.append(sql)
        return execute(sql, params, many, context)

    def writes(self, table: str = "") -> list[str]:
        verbs = ("INSERT", "UPDATE", "DELETE")
        return [s for s in self.statements if s.lstrip().upper().startswith(verbs) and table in s]

    def clear(self) -> None:
        with self._lock:
            self.statements.clear()


@pytest.fixture
def statement_log() -> Iterator[StatementLog]:
    log = StatementLog()

    def install(sender: Any, connection: Any, **kwargs: Any) -> None:
        if log not in connection.execute_wrappers:
            connection.execute_wrappers.append(log)

    def install_here() -> None:
        for conn in connections.all(initialized_only=True):
            install(None, conn)

    def remove_here() -> None:
        for conn in connections.all(initialized_only=True):
            if log in conn.execute_wrappers:
                conn.execute_wrappers.remove(log)

    from chatapp.core import db

    connection_created.connect(install)
    install_here()
    db.on_every_thread(install_here)  # they keep their connections open between calls
    try:
        yield log
    finally:
        connection_created.disconnect(install)
        remove_here()
        db.on_every_thread(remove_here)


# --- Turns ------------------------------------------------------------------------------------


async def start_turn(
    owner: Any,
    text: str,
    *,
    model_key: str = "aimlapi:google/gemini-2.5-flash",
    options: dict[str, Any] | None = None,
    system_prompt: str = "",
    conversation_id: uuid.UUID | None = None,
    launch: bool = True,
    frame_interval: float = 0.0,
) -> Any:
    """Save a turn through the service and launch its run on this loop, as the view does."""
    from chatapp.conversations.chat_settings import chat_settings_validate
    from chatapp.providers import catalog
    from chatapp.turns.manager import manager
    from chatapp.turns.requests import turn_request
    from chatapp.turns.services import turn_start
    from chatapp.turns.workers import WORKER_ID

    def _start() -> Any:
        chat_settings = chat_settings_validate(
            spec=catalog.get_model_by_key(model_key),
            system_prompt=system_prompt,
            raw_options=options or {},
        )
        turn = turn_start(
            owner=owner,
            conversation_id=conversation_id or uuid.uuid4(),
            text=text,
            idempotency_key=uuid.uuid4(),
            chat_settings=chat_settings,
            worker_id=WORKER_ID,
        )
        return turn, turn_request(message=turn.assistant_message)

    turn, request = await sync_to_async(_start)()
    if launch:
        await manager().launch(
            message_id=turn.assistant_message.id,
            route=turn.assistant_message.route,
            request=request,
            frame_interval=frame_interval,
        )
    return turn


async def wait_for_run(message_id: uuid.UUID, timeout: float = 10) -> None:
    """Wait until the run of a message has finished and saved its final state."""
    from chatapp.turns.manager import manager

    task = manager().running(message_id)
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), timeout)


async def reload_message(message_id: uuid.UUID) -> Any:
    from chatapp.models import Message

    return await Message.objects.aget(pk=message_id)


# --- Browser tests (Playwright + Debian's Chromium against a live Uvicorn) --------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "Browser-Test-Pw-1!"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    sync_playwright = None
    expect = None

# The marks of every browser test module: `pytestmark = BROWSER_TEST`.
BROWSER_TEST = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]


@pytest.fixture(scope="module")
def orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an event loop marked as running in this thread, so Django
    refuses ORM calls here (the test's own setup, pytest-django's flush). Django's documented
    escape hatch, for browser modules only (`pytest.mark.usefixtures("orm_beside_playwright")`):
    every other module runs with the check on, and the app's async paths are the same ones
    those modules exercise."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists() or sync_playwright is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def live_url(transactional_db: Any, aimlapi: Any, settings: Any) -> Iterator[str]:
    """The app served by Uvicorn on a loopback port, in a thread of this process (so it shares
    the test database and the settings the test chose)."""
    import uvicorn

    from chatapp.asgi import application

    settings.SSE_HEARTBEAT_SECONDS = 2.0
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, lifespan="on", log_level="warning", timeout_graceful_shutdown=2)
    )
    started = threading.Event()

    def serve() -> None:
        async def main() -> None:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            # Uvicorn exposes readiness only as a flag.
            while not server.started and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            started.set()
            await task

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    aimlapi.release_all()
    thread.join(10)


@pytest.fixture
def page(browser: Browser, live_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=live_url)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert dialogs == [], f"a dialog opened (script ran?): {dialogs}"
    assert errors == [], f"JavaScript errors: {errors}"


def log_in(page: Page, username: str = "alice") -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username=username, password=PASSWORD)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    ready(page)


def ready(page: Page) -> None:
    """Wait until htmx has taken the page over (app.js marks `body[data-ready]`)."""
    expect(page.locator("body[data-ready]")).to_have_count(1)


def send(page: Page, text: str) -> None:
    """Send a message; the first one of a new chat waits for the conversation's page, which
    replaces the whole body, to be taken over by htmx too."""
    new_chat = page.locator("#composer input[name=page][value=new]").count() > 0
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    if not new_chat:
        return
    # The conversation's page has replaced the body, or the send was refused where it was.
    page.wait_for_function(
        """() => !document.querySelector('#composer input[name=page][value=new]')
            || (document.getElementById('composer-error') || {}).textContent"""
    )
    if page.locator("#composer input[name=page][value=new]").count() == 0:
        ready(page)


def open_settings(page: Page) -> None:
    """Open the settings panel (it may be open already: a wide screen remembers it)."""
    toggle = page.get_by_role("button", name="Settings", exact=True)
    expect(toggle).to_have_attribute("aria-expanded", re.compile("true|false"))
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    expect(page.get_by_role("region", name="Chat settings")).to_be_visible()


def settings_saved(page: Page) -> Any:
    """Wait for the autosave (or check) answering the change made inside the block."""
    return page.expect_response(lambda r: r.request.method == "POST" and "/settings/" in r.url)


def answer(page: Page) -> Any:
    return page.locator("article.msg-assistant").last


def add_message(conversation: Any, **fields: Any) -> Any:
    """A message saved at the end of the conversation's branch shown (it follows the current
    leaf and becomes it), as the services add them: tests build threads with it."""
    from chatapp.conversations.models import Message

    fields.setdefault("parent_id", conversation.current_leaf_id)
    message = Message.objects.create(conversation=conversation, **fields)
    conversation.current_leaf_id = message.pk
    type(conversation).objects.filter(pk=conversation.pk).update(current_leaf_id=message.pk)
    return message


def add_path(conversation: Any, messages: list[Any]) -> list[Any]:
    """Unsaved messages saved in one statement as one path after the branch shown."""
    parent = conversation.current_leaf_id
    for message in messages:
        message.parent_id = parent
        parent = message.pk
    type(messages[0]).objects.bulk_create(messages)
    conversation.current_leaf_id = parent
    type(conversation).objects.filter(pk=conversation.pk).update(current_leaf_id=parent)
    return messages
