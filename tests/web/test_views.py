"""Views: sending, idempotency, one active turn, limits, settings, and access control."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from chatapp.conversations.titles import title_from_text
from chatapp.models import Conversation, Message
from chatapp.turns import services
from tests.conftest import add_message, add_path, attachment_row, wait_for_run
from tests.fakes.upstream import Gate, Reply, Text

pytestmark = [pytest.mark.django_db(transaction=True)]

MODEL = "aimlapi:google/gemini-2.5-flash"


def send_form(text: str = "Hello", *, key: uuid.UUID | None = None, **settings: str) -> dict:
    return {"text": text, "idempotency_key": str(key or uuid.uuid4()), "model": MODEL, **settings}


@pytest.fixture
async def async_client(user) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


async def test_first_message_creates_the_conversation_and_goes_to_its_page(
    aimlapi, run_manager, async_client, user
):
    aimlapi.enqueue(Reply([Text("Hi there")]))
    conversation_id = uuid.uuid4()
    response = await async_client.post(
        reverse("turn-create", args=[conversation_id]),
        {**send_form("What is Gemini?", temperature="0.5"), "page": "new"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    location = json.loads(response["HX-Location"])
    assert location["path"] == f"/c/{conversation_id}/"
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.owner_id == user.pk
    assert conversation.title == "What is Gemini?"
    assert conversation.settings == {"temperature": 0.5}
    assistant = await Message.objects.aget(conversation=conversation, role="assistant")
    await wait_for_run(assistant.id)
    assert (await Message.objects.aget(pk=assistant.id)).content == "Hi there"


@pytest.mark.parametrize(
    ("asked", "interval"),
    [("30", 1 / 30), ("120", 1 / 120), (None, 0.0), ("thirty", 0.0), ("99999", 0.0)],
)
async def test_a_send_from_the_page_paces_its_answer_at_the_frames_the_page_asks_for(
    aimlapi, run_manager, async_client, asked, interval
):
    # app.js asks for as many frames a second as it can take (turns/pacing.py); what is not
    # a frame rate asks for nothing, and a run asked nothing sends every frame at once.
    aimlapi.enqueue(Reply([Gate("hold"), Text("ok")]))
    headers = {"HX-Request": "true"} | ({"X-Chat-Frames": asked} if asked else {})
    response = await async_client.post(
        reverse("turn-create", args=[uuid.uuid4()]), send_form(), headers=headers
    )
    assert response.status_code == 200
    answer = await Message.objects.aget(role="assistant")
    assert run_manager.runs[answer.id].frame_interval == pytest.approx(interval)
    aimlapi.release("hold")
    await wait_for_run(answer.id)


async def test_a_new_chats_first_turn_goes_to_the_upstream_with_no_database_hop_first(
    aimlapi, run_manager, async_client, user, monkeypatch
):
    # Its request is built from the rows just saved, and the person's key read, by the view
    # (manager.launch); a later turn's request reads the thread, and a first turn's images
    # are read and scaled, on a database thread as the run begins (Run._prepare).
    from chatapp.turns.run import Run

    prepared: list[uuid.UUID] = []
    prepare = Run._prepare

    def counted(self):
        prepared.append(self.message_id)
        prepare(self)

    monkeypatch.setattr(Run, "_prepare", counted)
    aimlapi.enqueue(Reply([Text("one")]), Reply([Text("two")]), Reply([Text("three")]))
    conversation_id = uuid.uuid4()

    async def send(conversation: uuid.UUID, **fields) -> Message:
        response = await async_client.post(
            reverse("turn-create", args=[conversation]), {**send_form("Hello"), **fields}
        )
        assert response.status_code == 200, response.content
        answer = await Message.objects.filter(
            conversation_id=conversation, role="assistant"
        ).alatest("created_at")
        await wait_for_run(answer.id)
        return answer

    first = await send(conversation_id)
    assert prepared == []
    later = await send(conversation_id, parent=str(first.id))
    image = await sync_to_async(attachment_row)(user)
    with_image = await send(uuid.uuid4(), attachments=str(image.id))
    assert prepared == [later.id, with_image.id]
    sent = [[m["role"] for m in r.json["messages"]] for r in aimlapi.requests]
    assert sent == [["user"], ["user", "assistant", "user"], ["user"]]


async def _post_through_the_server(
    cookie: bytes, path: str, form: dict | None = None, *, at_head=None
) -> int:
    """A POST as the page makes it, through the server's own ASGI application (its request
    threads and handler), CSRF token and all; `at_head` is called as the response's head
    arrives, before its body is read. The response's status."""
    from urllib.parse import urlencode

    from asgiref.testing import ApplicationCommunicator

    from chatapp.asgi import application
    from tests.conftest import http_scope

    token = "a" * 32
    headers = [
        (b"host", b"testserver"),
        (b"cookie", cookie + f"; csrftoken={token}".encode()),
        (b"x-csrftoken", token.encode()),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"hx-request", b"true"),
    ]
    scope = {**http_scope(path, headers=headers), "method": "POST"}
    request = ApplicationCommunicator(application, scope)
    body = urlencode(form or {}).encode()
    await request.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await request.receive_output(10)
    if at_head is not None:
        await at_head()
    while (await request.receive_output(10)).get("more_body"):
        pass
    return start["status"]


async def test_a_send_through_the_server_starts_its_run_on_the_loop_before_the_response(
    aimlapi, run_manager, user, monkeypatch
):
    # The view hands the run to the server's handler (manager.launches_after), which starts
    # it once the view returns: the view's thread makes no hop to the loop (manager._on_loop)
    # and back, yet the run can be stopped as soon as the page has the response.
    from chatapp.turns import manager as turns_manager
    from tests.conftest import session_cookie

    hops: list[object] = []
    on_loop = turns_manager._on_loop
    monkeypatch.setattr(
        turns_manager,
        "_on_loop",
        lambda step, *, wait: (hops.append(step), on_loop(step, wait=wait)),
    )
    client = Client()
    await sync_to_async(client.force_login)(user)
    aimlapi.enqueue(Reply([Gate("hold"), Text("Hi there")]))
    conversation_id = uuid.uuid4()
    running_at_head: list[bool] = []

    async def at_head() -> None:
        answer = await Message.objects.aget(conversation_id=conversation_id, role="assistant")
        running_at_head.append(run_manager.running(answer.id) is not None)

    status = await _post_through_the_server(
        session_cookie(client),
        reverse("turn-create", args=[conversation_id]),
        send_form("Hello"),
        at_head=at_head,
    )
    assert status == 200
    assert running_at_head == [True]
    assert hops == []
    answer = await Message.objects.aget(conversation_id=conversation_id, role="assistant")
    aimlapi.release("hold")
    await wait_for_run(answer.id)
    assert (await Message.objects.aget(pk=answer.id)).content == "Hi there"


async def test_a_send_through_an_idle_server_runs_its_view_and_final_save_on_one_thread(
    aimlapi, run_manager, user, monkeypatch
):
    # One warm thread for the whole turn (core.threads): the view on one pool and the final
    # save on another cost ~4% more CPU a turn (bench.ab), even once a burst has started
    # several threads.
    from chatapp.core.threads import SYNC_THREADS
    from chatapp.turns import run as turns_run
    from tests.conftest import session_cookie

    ran_on: dict[str, str] = {}
    turn_start, save_final = services.turn_start, turns_run._save_final

    def recorded(name: str, real):
        def call(*args, **kwargs):
            ran_on[name] = threading.current_thread().name
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(services, "turn_start", recorded("view", turn_start))
    monkeypatch.setattr(turns_run, "_save_final", recorded("final save", save_final))
    client = Client()
    await sync_to_async(client.force_login)(user)
    barrier = threading.Barrier(3, timeout=10)  # a burst's worth of threads, first
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(SYNC_THREADS, barrier.wait) for _ in range(3)))
    aimlapi.enqueue(Reply([Gate("hold"), Text("Hi there")]))
    conversation_id = uuid.uuid4()
    status = await _post_through_the_server(
        session_cookie(client), reverse("turn-create", args=[conversation_id]), send_form()
    )
    assert status == 200
    # The view's thread is free again (it reports the response before it is) when the
    # answer comes.
    assert SYNC_THREADS.wait_idle(len(SYNC_THREADS._threads), timeout=10)
    answer = await Message.objects.aget(conversation_id=conversation_id, role="assistant")
    aimlapi.release("hold")
    await wait_for_run(answer.id)
    assert (await Message.objects.aget(pk=answer.id)).content == "Hi there"
    assert ran_on["final save"] == ran_on["view"]
    assert ran_on["view"].startswith("chat-sync")


@pytest.mark.parametrize("through", ["test client", "server"])
@pytest.mark.parametrize("failing", ["the run", "its control group"])
async def test_an_answer_whose_run_cannot_start_is_saved_failed_saying_so_not_left_pending(
    aimlapi, run_manager, user, monkeypatch, through, failing
):
    # Left pending, it would hold its page's stream, and the conversation's next send, until
    # the reaper found this worker gone; a 500 would leave the page not knowing of it at all.
    from chatapp.turns.persistence import NOT_STARTED
    from chatapp.turns.run import Run
    from tests.conftest import open_stream, session_cookie

    def broken(*args, **kwargs):
        raise RuntimeError("cannot start")

    if failing == "the run":
        monkeypatch.setattr(Run, "__init__", broken)
    else:
        monkeypatch.setattr(run_manager.layer, "group_add", broken)
    client = Client()
    await sync_to_async(client.force_login)(user)
    conversation_id = uuid.uuid4()
    if through == "server":
        status = await _post_through_the_server(
            session_cookie(client), reverse("turn-create", args=[conversation_id]), send_form()
        )
    else:
        response = await sync_to_async(client.post)(
            reverse("turn-create", args=[conversation_id]), send_form("Hello")
        )
        status = response.status_code
    assert status == 200
    answer = await Message.objects.aget(conversation_id=conversation_id, role="assistant")
    assert (answer.status, answer.error_code, answer.error_message) == (
        "failed",
        "internal",
        NOT_STARTED,
    )
    assert answer.id not in run_manager.runs
    assert run_manager.running(answer.id) is None
    assert aimlapi.requests == []
    stream = open_stream(answer.id, cookie=session_cookie(client))  # what the page then opens
    await stream.start()
    _, end = await stream.read_until_terminal()
    assert end.event == "error"
    assert NOT_STARTED in end.data
    monkeypatch.undo()
    aimlapi.enqueue(Reply([Text("Hi there")]))
    response = await sync_to_async(client.post)(
        reverse("turn-create", args=[conversation_id]),
        send_form("Hello again", parent=str(answer.id)),
    )
    assert response.status_code == 200  # the conversation takes the next send (not a 409)
    latest = await Message.objects.filter(role="assistant").alatest("created_at")
    await wait_for_run(latest.id)
    assert (await Message.objects.aget(pk=latest.id)).content == "Hi there"


@pytest.mark.parametrize(
    ("first_message", "title"),
    [
        ("Explain **markdown** with some `code`.", "Explain markdown with some code."),
        ("## Plan\n\nsteps", "Plan"),
        ("> quoted [a link](https://example.com) ![pic](x.png)", "quoted a link pic"),
        ("- item ~~struck~~ **bold *nested* text**", "item struck bold nested text"),
        ("```python\nprint(1)\n```\nWhat does this print?", "What does this print?"),
        ("```python\nprint(1)\n```", "print(1)"),
        ("3) Third step", "Third step"),
        # Not markup: a lone star, dunder names, a year that starts a sentence.
        ("What is 2*3? And __init__?", "What is 2*3? And __init__?"),
        ("2024. A year", "2024. A year"),
        ("   \n\n", "New chat"),
    ],
)
def test_titles_drop_markdown_markup_but_keep_the_words(first_message, title):
    assert title_from_text(first_message) == title


async def test_send_in_a_conversation_returns_both_messages_and_a_fresh_key(
    aimlapi, run_manager, async_client, user
):
    aimlapi.enqueue(Reply([Gate("hold"), Text("ok")]))
    conversation_id = uuid.uuid4()
    response = await async_client.post(
        reverse("turn-create", args=[conversation_id]), send_form("<script>alert(1)</script>")
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<article") == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert 'sse-connect="/stream/' in html
    assert re.search(r'id="idempotency-key"[^>]*hx-swap-oob="true"', html)
    aimlapi.release("hold")


async def test_a_turn_goes_live_to_the_conversations_other_pages_unless_it_made_it(
    aimlapi, run_manager, async_client, monkeypatch
):
    """No page can follow a conversation before it exists (and one opened since reads the
    turn with it), so the send that makes it publishes nothing; a later one does."""
    from chatapp.web.views import turns

    published: list[uuid.UUID] = []
    monkeypatch.setattr(
        turns.live, "publish_turn", lambda **frame: published.append(frame["conversation_id"])
    )
    aimlapi.enqueue(Reply([Text("One.")]), Reply([Text("Two.")]))
    conversation_id = uuid.uuid4()
    url = reverse("turn-create", args=[conversation_id])
    first = await async_client.post(url, send_form("one"))
    assert first.status_code == 200
    assert published == []
    answer = re.findall(r'id="m-([0-9a-f-]+)"', first.content.decode())[1]
    await wait_for_run(uuid.UUID(answer))
    second = await async_client.post(url, {**send_form("two"), "parent": answer})
    assert second.status_code == 200
    assert published == [conversation_id]


async def test_double_submit_with_the_same_key_makes_one_turn(aimlapi, run_manager, async_client):
    aimlapi.enqueue(Reply([Gate("hold"), Text("ok")]))
    conversation_id = uuid.uuid4()
    form = send_form(key=uuid.uuid4())
    url = reverse("turn-create", args=[conversation_id])
    first = await async_client.post(url, form)
    second = await async_client.post(url, form)
    assert first.status_code == second.status_code == 200
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 2
    ids = re.findall(r'id="m-([0-9a-f-]+)"', first.content.decode())
    assert ids == re.findall(r'id="m-([0-9a-f-]+)"', second.content.decode())
    aimlapi.release("hold")
    assert len(aimlapi.wait_for_requests(1)) >= 1
    await wait_for_run(uuid.UUID(ids[1]))
    assert len(aimlapi.requests) == 1  # one upstream call


async def test_a_second_turn_while_one_runs_is_409(aimlapi, run_manager, async_client):
    aimlapi.enqueue(Reply([Gate("hold"), Text("ok")]))
    conversation_id = uuid.uuid4()
    url = reverse("turn-create", args=[conversation_id])
    assert (await async_client.post(url, send_form("one"))).status_code == 200
    response = await async_client.post(url, send_form("two"), headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "still being written" in response.content.decode()
    assert response["HX-Retarget"] == "#composer-error"
    aimlapi.release("hold")


async def test_too_long_a_message_names_the_limit_and_saves_nothing(
    aimlapi, run_manager, async_client, settings
):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "message_chars": 100}
    response = await async_client.post(
        reverse("turn-create", args=[uuid.uuid4()]), send_form("x" * 101)
    )
    assert response.status_code == 400
    assert "101 characters" in response.content.decode()
    assert "the limit is 100 characters" in response.content.decode()
    assert await Message.objects.acount() == 0


async def test_sends_per_minute_are_limited(aimlapi, run_manager, async_client, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "sends_per_minute": 2}
    for _ in range(2):
        aimlapi.enqueue(Reply([Text("ok")]))
    for _ in range(2):
        conversation_id = uuid.uuid4()
        response = await async_client.post(
            reverse("turn-create", args=[conversation_id]), send_form()
        )
        assert response.status_code == 200
    response = await async_client.post(reverse("turn-create", args=[uuid.uuid4()]), send_form())
    assert response.status_code == 429
    assert "the limit is 2 per minute" in response.content.decode()
    for message in [m async for m in Message.objects.filter(role="assistant")]:
        await wait_for_run(message.id)


@pytest.mark.parametrize(
    ("model", "field", "value", "words"),
    [
        ("aimlapi:gemini-1.5-pro", "top_p", "0.05", "Top P must be 0.1–1 for Gemini 1.5 Pro"),
        ("aimlapi:google/gemini-2.5-flash", "top_p", "0.005", "Top P must be 0.01–1"),
        ("aimlapi:google/gemini-2.5-flash", "temperature", "2.5", "Temperature must be 0–2"),
        ("aimlapi:google/gemini-2.5-flash", "seed", "0", "Seed must be 1–"),
        ("aimlapi:google/gemini-2.5-flash", "max_tokens", "abc", "whole number"),
        ("aimlapi:google/gemini-2.5-flash", "stop", "a\nb\nc\nd\ne", "at most 4 sequences"),
    ],
)
async def test_settings_out_of_range_are_refused_before_any_request(
    aimlapi, run_manager, async_client, model, field, value, words
):
    response = await async_client.post(
        reverse("turn-create", args=[uuid.uuid4()]),
        {**send_form(), "model": model, field: value},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert words in html
    assert f'id="err-{field}"' in html
    assert await Message.objects.acount() == 0
    assert aimlapi.requests == []


async def test_settings_autosave_and_check(aimlapi, async_client, user):
    conversation = await Conversation.objects.acreate(
        owner=user, route="aimlapi", model="gemini-1.5-pro"
    )
    url = reverse("conversation-settings", args=[conversation.id])
    ok = await async_client.post(url, {"model": MODEL, "temperature": "1.2", "stop": "END\nSTOP"})
    assert "Saved." in ok.content.decode()
    await conversation.arefresh_from_db()
    assert conversation.model == "google/gemini-2.5-flash"
    assert conversation.settings == {"temperature": 1.2, "stop": ["END", "STOP"]}

    bad = await async_client.post(url, {"model": "aimlapi:gemini-1.5-pro", "temperature": "9"})
    assert "Not saved" in bad.content.decode()
    await conversation.arefresh_from_db()
    assert conversation.model == "google/gemini-2.5-flash"  # unchanged: clearly refused

    # A value the new model does not take does not refuse the switch: it is set aside.
    aside = await async_client.post(url, {"model": "aimlapi:gemini-1.5-pro", "seed": "3"})
    assert "Saved." in aside.content.decode()
    await conversation.arefresh_from_db()
    assert (conversation.model, conversation.settings) == ("gemini-1.5-pro", {"seed": 3})

    hints = await async_client.post(reverse("settings-check"), {"model": "aimlapi:gemini-1.5-pro"})
    assert re.search(r'id="hint-top_p"[^>]*>0.1–1<', hints.content.decode())


async def test_a_value_the_model_does_not_take_is_kept_but_never_sent(
    aimlapi, run_manager, async_client
):
    response = await async_client.post(
        reverse("turn-create", args=[uuid.uuid4()]),
        {**send_form(), "model": "aimlapi:gemini-1.5-pro", "seed": "5", "temperature": "0.5"},
    )
    assert response.status_code == 200
    for message in [m async for m in Message.objects.filter(role="assistant")]:
        await wait_for_run(message.id)
    body = aimlapi.requests[0].json
    assert body["temperature"] == 0.5
    assert "seed" not in body  # Gemini 1.5 Pro on AI/ML API does not take it
    conversation = await Conversation.objects.aget()
    assert conversation.settings == {"temperature": 0.5, "seed": 5}  # kept for another model


async def test_stop_is_a_post_and_get_never_starts_a_generation(
    aimlapi, run_manager, async_client, user
):
    conversation_id = uuid.uuid4()
    assert (
        await async_client.get(reverse("turn-create", args=[conversation_id]))
    ).status_code == 405
    assert (await async_client.get(reverse("turn-stop", args=[conversation_id]))).status_code == 405
    assert await Message.objects.acount() == 0
    assert aimlapi.requests == []


async def test_retry_answers_again_beside_the_failed_answer(
    aimlapi, run_manager, async_client, fast_runs
):
    from tests.fakes.upstream import ErrorReply

    aimlapi.enqueue(ErrorReply.unauthorized())
    conversation_id = uuid.uuid4()
    await async_client.post(reverse("turn-create", args=[conversation_id]), send_form("Q"))
    failed = await Message.objects.aget(conversation_id=conversation_id, role="assistant")
    await wait_for_run(failed.id)
    aimlapi.enqueue(Reply([Text("Second try worked")]))
    response = await async_client.post(
        reverse("message-regenerate", args=[conversation_id, failed.id])
    )
    assert response.status_code == 200
    replacement = await Message.objects.exclude(pk=failed.pk).aget(
        conversation_id=conversation_id, role="assistant"
    )
    await wait_for_run(replacement.id)
    await replacement.arefresh_from_db()
    assert replacement.content == "Second try worked"
    assert replacement.parent_id == failed.parent_id
    assert [m["role"] for m in aimlapi.requests[1].json["messages"]] == ["user"]
    page = await async_client.get(reverse("conversation-detail", args=[conversation_id]))
    html = page.content.decode()
    assert "Second try worked" in html
    assert f'id="m-{failed.id}"' not in html  # kept, one version back: "2 / 2"
    assert '<span class="version-count">2 / 2</span>' in html


# --- Access: every route, as anonymous, owner and another user (docs/SECURITY.md rules 9, 10) -----


def _routes() -> list[tuple[str, str]]:
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern).startswith("admin/"):
                    continue
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append((pattern.name, prefix + str(pattern.pattern)))

    walk(get_resolver().url_patterns)
    return found


PUBLIC = {"login", "signup", "healthz"}
POST_ONLY = {
    "turn-create",
    "turn-stop",
    "message-regenerate",
    "message-continue",
    "message-results",
    "message-edit",
    "message-show",
    "turn-delete",
    "conversation-settings",
    "conversation-pin",
    "conversation-archive",
    "conversation-delete",
    "settings-check",
    "settings-default",
    "preset-create",
    "api-key-save",
    "api-key-remove",
    "preset-delete",
    "schema-save",
    "schema-delete",
    "attachment-upload",
    "logout",
    "admin-person",
}


def _url(name: str, conversation: Conversation, message: Message) -> str:
    kwargs = {}
    pattern = dict(_routes())[name]
    if "<uuid:conversation_id>" in pattern:
        kwargs["conversation_id"] = conversation.id
    if "<uuid:message_id>" in pattern:
        kwargs["message_id"] = message.id
    if "<uuid:preset_id>" in pattern:
        kwargs["preset_id"] = uuid.uuid4()
    if "<uuid:schema_id>" in pattern:
        kwargs["schema_id"] = uuid.uuid4()
    if "<int:person_id>" in pattern:
        # Administrators' own: tests/web/test_admin_page.py.
        kwargs.update(person_id=1, action="approve")
    if "<slug:route>" in pattern:
        # A person's own keys: tests/web/test_keys_page.py.
        kwargs["route"] = "gemini"
    if "<uuid:attachment_id>" in pattern:
        # Owners and other users of real attachments: tests/attachments/test_images.py.
        kwargs["attachment_id"] = uuid.uuid4()
    return reverse(name, kwargs=kwargs)


@pytest.fixture
def owned(user) -> tuple[Conversation, Message]:
    conversation = Conversation.objects.create(
        owner=user, route="aimlapi", model="google/gemini-2.5-flash", title="Mine"
    )
    add_message(conversation, role="user", content="hello")
    answer = add_message(conversation, role="assistant", status="failed", content="x")
    return conversation, answer


def test_the_url_walk_covers_every_route():
    names = {name for name, _ in _routes()}
    assert names == PUBLIC | POST_ONLY | {
        "chat-home",
        "conversation-detail",
        "conversation-older",
        "sidebar-more",
        "attachment",
        "attachment-thumbnail",
        "message-text",
        "message-detail",
        "message-edit-form",
        "message-models",
        "search",
        "conversation-rename",
        "conversation-export-markdown",
        "conversation-export-json",
        "conversations-export",
        "conversations-import",
        "admin-home",
        "usage",
        "api-keys",
        "schemas",
    }


@pytest.mark.parametrize("name", [n for n, _ in _routes() if n not in PUBLIC])
def test_anonymous_is_sent_to_login(name, owned):
    conversation, message = owned
    client = Client()
    url = _url(name, conversation, message)
    response = client.post(url) if name in POST_ONLY else client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    htmx = (
        client.post(url, headers={"HX-Request": "true"})
        if name in POST_ONLY
        else client.get(url, headers={"HX-Request": "true"})
    )
    assert htmx.status_code == 401
    assert htmx["HX-Redirect"] == "/accounts/login/"


@pytest.mark.parametrize("name", [n for n, p in _routes() if "conversation_id" in p])
def test_another_user_gets_404_for_every_conversation_url(name, owned, other_user, aimlapi):
    conversation, message = owned
    client = Client()
    client.force_login(other_user)
    url = _url(name, conversation, message)
    response = client.post(url, send_form()) if name in POST_ONLY else client.get(url)
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.owner.username == "alice"
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.parametrize("name", ["conversation-detail", "conversation-older", "message-text"])
def test_owner_can_read(name, owned, user_client, aimlapi):
    conversation, message = owned
    response = user_client.get(_url(name, conversation, message))
    assert response.status_code == 200


def test_a_message_text_is_its_markdown_as_plain_text_never_html(owned, user_client):
    conversation, message = owned
    Message.objects.filter(pk=message.pk).update(content="**bold** <script>x</script>")
    response = user_client.get(_url("message-text", conversation, message))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content.decode() == "**bold** <script>x</script>"


def test_a_missing_page_is_the_apps_own_and_an_htmx_request_gets_words(user_client):
    response = user_client.get(f"/c/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert b"This conversation does not exist any more" in response.content
    assert b'href="/"' in response.content
    htmx = user_client.post(f"/c/{uuid.uuid4()}/pin/", headers={"HX-Request": "true"})
    assert htmx.status_code == 404
    assert b"no longer exists" in htmx.content


def test_state_changes_need_csrf(owned, user):
    conversation, message = owned
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for name in POST_ONLY - {"logout"}:
        response = client.post(_url(name, conversation, message), send_form())
        assert response.status_code == 403, name
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_healthz_is_public():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_pages_carry_the_content_security_policy(user_client, owned):
    response = user_client.get(reverse("conversation-detail", args=[owned[0].id]))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "img-src 'self' data: blob:" in csp
    assert "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    html = response.content.decode()
    assert '"allowEval": false' in html
    assert '"allowScriptTags": false' in html
    assert '"selfRequestsOnly": true' in html
    assert "<script>" not in html
    assert " onclick=" not in html


def test_long_conversations_page_by_keyset(user_client, user, aimlapi):
    from chatapp.conversations.selectors import THREAD_PAGE_SIZE

    conversation = Conversation.objects.create(
        owner=user, route="aimlapi", model="google/gemini-2.5-flash"
    )
    add_path(
        conversation,
        [
            Message(
                conversation=conversation,
                role="user" if i % 2 == 0 else "assistant",
                content=f"message number {i:03d}",
            )
            for i in range(THREAD_PAGE_SIZE * 2 + 5)
        ],
    )
    html = user_client.get(reverse("conversation-detail", args=[conversation.id])).content.decode()
    shown = re.findall(r"message number (\d{3})", html)
    assert len(shown) == THREAD_PAGE_SIZE
    assert shown[-1] == f"{THREAD_PAGE_SIZE * 2 + 4:03d}"
    seen = set(shown)
    while match := re.search(r'hx-get="([^"]+/older/\?before=[^"]+)"', html):
        html = user_client.get(match.group(1).replace("&amp;", "&")).content.decode()
        page = re.findall(r"message number (\d{3})", html)
        assert not seen & set(page)  # no message twice
        seen |= set(page)
    assert len(seen) == THREAD_PAGE_SIZE * 2 + 5


@pytest.mark.parametrize("through", ["test client", "server"])
async def test_logging_out_ends_that_sessions_streams(aimlapi, run_manager, user, through):
    """docs/SECURITY.md rule 11: a stream open in a session ends when that session logs out."""
    from tests.conftest import open_stream, session_cookie, start_turn

    client = Client()
    await sync_to_async(client.force_login)(user)
    aimlapi.enqueue(Reply([Text("part"), Gate("never")]))
    turn = await start_turn(user, "Hello")
    stream = open_stream(turn.assistant_message.id, cookie=session_cookie(client))
    await stream.start()
    await stream.attached()
    if through == "server":
        status = await _post_through_the_server(session_cookie(client), "/accounts/logout/")
        assert status in (200, 302)
    else:
        await sync_to_async(client.post)("/accounts/logout/")
    while await stream.next_event() is not None:
        pass
    assert stream.ended  # the response finished without a terminal event
    assert b"event: done" not in stream.body
    await run_manager.request_stop(turn.assistant_message.id)


def test_the_sidebar_pages_by_keyset_pinned_first(user_client, user):
    from datetime import timedelta

    from django.utils import timezone

    from chatapp.conversations.selectors import SIDEBAR_PAGE_SIZE

    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(
            owner=user,
            title=f"chat {i:03d}",
            route="aimlapi",
            model="m",
            updated_at=now - timedelta(minutes=i),
            pinned=(i == 120),
        )
        for i in range(SIDEBAR_PAGE_SIZE * 2 + 30)
    )
    html = user_client.get(reverse("chat-home")).content.decode()
    titles = re.findall(r"chat (\d{3})</a>", html)
    assert titles[0] == "120"  # pinned first, although old
    assert titles[1:4] == ["000", "001", "002"]
    seen = list(titles)
    while match := re.search(r'hx-get="(/sidebar/\?before=[^"]+)"', html):
        html = user_client.get(match.group(1).replace("&amp;", "&")).content.decode()
        seen += re.findall(r"chat (\d{3})</a>", html)
    assert sorted(seen) == [f"{i:03d}" for i in range(SIDEBAR_PAGE_SIZE * 2 + 30)]


async def test_continue_picks_up_an_interrupted_answer_where_it_stopped(
    aimlapi, run_manager, async_client, user, cookie
):
    from chatapp.turns.requests import CONTINUE_INSTRUCTION
    from tests.conftest import open_stream

    def _interrupted() -> tuple[Conversation, Message]:
        conversation = Conversation.objects.create(
            owner=user, route="aimlapi", model="google/gemini-2.5-flash", title="T"
        )
        question = add_message(conversation, role="user", content="Tell me")
        answer = add_message(
            conversation,
            parent=question,
            role="assistant",
            status="interrupted",
            content="The first half, ",
            route="aimlapi",
            model="google/gemini-2.5-flash",
            request_options={"temperature": 0.2},
            error_code="interrupted",
            error_message="The server stopped.",
        )
        return conversation, answer

    conversation, answer = await sync_to_async(_interrupted)()
    aimlapi.enqueue(Reply([Gate("go"), Text("and the second half.")]))
    response = await async_client.post(
        reverse("message-continue", args=[conversation.id, answer.id])
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        f'sse-connect="/stream/{answer.id}/?block=0&amp;after=16&amp;pass=' in html
    )  # streams on from its text
    stream = open_stream(answer.id, cookie=cookie, after=16)
    await stream.start()
    await stream.attached()
    aimlapi.release("go")
    rest, terminal = await stream.read_until_terminal()
    await wait_for_run(answer.id)

    assert rest == "and the second half."
    assert terminal.event == "done"
    await answer.arefresh_from_db()
    assert answer.status == Message.Status.COMPLETE
    assert answer.content == "The first half, and the second half."
    assert answer.error_message == ""
    sent = aimlapi.requests[0].json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == "The first half, "
    assert sent["messages"][2]["content"] == CONTINUE_INSTRUCTION
    assert sent["temperature"] == 0.2  # the options it was asked with


async def test_only_the_last_unfinished_answer_can_be_continued(
    aimlapi, run_manager, async_client, user
):
    def _rows() -> tuple[Conversation, Message, Message]:
        conversation = Conversation.objects.create(
            owner=user, route="aimlapi", model="google/gemini-2.5-flash"
        )
        done = add_message(
            conversation,
            role="assistant",
            status="complete",
            content="Whole",
            route="aimlapi",
            model="google/gemini-2.5-flash",
        )
        empty = add_message(
            conversation,
            role="assistant",
            status="failed",
            content="",
            route="aimlapi",
            model="google/gemini-2.5-flash",
        )
        return conversation, done, empty

    conversation, done, empty = await sync_to_async(_rows)()
    for message, words in ((done, "stopped part-way"), (empty, "no text")):
        response = await async_client.post(
            reverse("message-continue", args=[conversation.id, message.id])
        )
        assert response.status_code == 409
        assert words in response.content.decode()
    assert aimlapi.requests == []


async def test_answers_written_at_once_are_limited_per_person(
    aimlapi, run_manager, async_client, settings
):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "active_turns_per_user": 2}
    for _ in range(3):
        aimlapi.enqueue(Reply([Gate("hold"), Text("ok")]))
    for _ in range(2):
        response = await async_client.post(reverse("turn-create", args=[uuid.uuid4()]), send_form())
        assert response.status_code == 200
    response = await async_client.post(reverse("turn-create", args=[uuid.uuid4()]), send_form())
    assert response.status_code == 429
    assert "the limit is 2 at a time" in response.content.decode()
    aimlapi.release("hold")


@pytest.mark.django_db
def test_what_a_signed_in_person_sees_is_not_kept_by_any_cache(user_client, owned):
    for url in (reverse("chat-home"), reverse("conversation-detail", args=[owned[0].id])):
        response = user_client.get(url)
        assert response.status_code == 200
        directives = {d.strip() for d in response["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives


@pytest.mark.django_db
def test_a_message_too_big_to_read_says_so_above_the_composer_naming_the_limits(
    user_client, settings
):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = user_client.post(
        reverse("turn-create", args=[uuid.uuid4()]),
        send_form("x" * (limit + 10)),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 413
    assert response["HX-Retarget"] == "#composer-error"
    text = response.content.decode()
    assert "more than this server reads" in text
    assert "a message can be at most 100,000 characters" in text
    assert "Bad Request" not in text
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_a_message_with_a_nul_character_is_refused_for_that_not_as_an_expired_form(
    user_client, aimlapi
):
    response = user_client.post(
        reverse("turn-create", args=[uuid.uuid4()]),
        send_form("before\x00after"),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "contains a NUL character (U+0000)" in text
    assert "expired" not in text
    assert not Conversation.objects.exists()
