"""Several server processes: a turn started on worker A streams to a tab on worker B, resumes
there after a reconnect and is stopped through B (PostgreSQL + Redis); and a worker killed
with SIGKILL mid-answer leaves the message `interrupted`, with the text it had flushed, and the
page offers Retry and Continue."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from chatapp.models import Message
from tests.conftest import API_KEY
from tests.fakes.upstream import Gate, Reply, Text, chunks
from tests.live import Browser, Worker, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

PASSWORD = "Worker-Test-Pw-1!"
FIRST = "The first half of the answer, streamed through worker A; "
SECOND = "the second half, after the reconnect — ünïcode 🚀 included."

shared_layer = pytest.mark.skipif(
    not (settings.REDIS_URL and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")),
    reason="several workers share streams only through Redis and PostgreSQL (the suite's second pass)",
)


@pytest.fixture
def workers(fake_upstream):
    started: list[Worker] = []

    def start(**extra: str) -> Worker:
        worker = Worker(worker_env(fake_upstream.openai_base_url, API_KEY, **extra)).start()
        started.append(worker)
        return worker

    yield start
    fake_upstream.release_all()
    for worker in started:
        worker.stop()


@pytest.fixture
def account():
    return get_user_model().objects.create_user(username="worker-user", password=PASSWORD)


def wait_for(predicate, timeout: float = 15.0, what: str = "a condition"):
    """Poll the database (the other process's only channel to us) until `predicate` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"waited {timeout} s for {what}")


def read_text(events, until: str) -> tuple[str, str | None]:
    """Delta text from `events` until it ends with `until`; (text, last event id)."""
    text, last_id = "", None
    for event, data, event_id in events:
        if event == "delta":
            text += json.loads(data)["t"]
            last_id = event_id
            if text.endswith(until):
                return text, last_id
    raise AssertionError(f"stream ended before {until!r}: got {text!r}")


@shared_layer
def test_a_turn_on_worker_a_streams_resumes_and_stops_through_worker_b(
    workers, account, fake_upstream
):
    a, b = workers(), workers()
    fake_upstream.enqueue(
        Reply([*chunks(FIRST, size=7), Gate("mid"), *chunks(SECOND, size=7), Gate("never")])
    )
    browser = Browser(account, a)
    conversation, path = browser.send(a, "Hello from A")
    message_id = path.split("/")[2]

    # The tab is on worker B; the run lives on A.
    first, last_id = read_text(browser.stream(b, path), until=FIRST)
    assert first == FIRST  # the events stream is closed here: the network dropped

    # Reconnect to B with Last-Event-ID; the answer goes on meanwhile.
    events = browser.stream(b, path, last_event_id=last_id)
    for event, data, _ in events:
        if event == "comment" and data == "live":
            break
    fake_upstream.release("mid")
    rest, _ = read_text(events, until=SECOND)
    assert first + rest == FIRST + SECOND  # nothing missing, nothing twice

    # Stop, pressed on B, reaches the run on A, which closes the upstream request.
    response = browser.post(f"{b.url}/c/{conversation}/stop/")
    assert response.status_code == 204
    terminal = next((event, data) for event, data, _ in events if event in ("done", "error"))
    assert terminal[0] == "done"
    assert "Stopped" in terminal[1]
    assert fake_upstream.wait_closed(0).client_disconnected
    message = Message.objects.get(pk=message_id)
    assert message.status == Message.Status.STOPPED
    assert message.content == FIRST + SECOND


def test_a_worker_killed_mid_answer_leaves_it_interrupted_with_its_text(
    workers, account, fake_upstream
):
    a = workers()
    fake_upstream.enqueue(Reply([*chunks(FIRST, size=9), Gate("hold"), Text("never saved")]))
    browser = Browser(account, a)
    conversation, path = browser.send(a, "Hello, then crash")
    message_id = path.split("/")[2]
    fake_upstream.wait_for_gate("hold")
    # The run checkpoints within a second; that is all a crash may lose.
    wait_for(
        lambda: Message.objects.filter(pk=message_id, content=FIRST).exists(),
        what="the partial text to be checkpointed",
    )

    a.kill9()
    assert fake_upstream.wait_closed(0).client_disconnected  # the OS closed its socket
    restarted = Worker(a.env, port=a.port).start()
    try:
        message = wait_for(
            lambda: Message.objects.filter(
                pk=message_id, status=Message.Status.INTERRUPTED
            ).first(),
            what="the orphaned run to be marked interrupted",
        )
        assert message.content == FIRST
        page = browser.client.get(f"{restarted.url}/c/{conversation}/").text
        assert FIRST.strip() in page
        assert ">Retry</button>" in page
        assert ">Continue</button>" in page
        terminal = next(
            (event, data)
            for event, data, _ in browser.stream(restarted, path)
            if event in ("done", "error")
        )
        assert terminal[0] == "done"
        assert "The server stopped while this answer was being written" in terminal[1]

        # Continue: the same answer streams on from the text it kept.
        fake_upstream.enqueue(Reply([Gate("continue"), Text("and the end.")]))
        response = browser.post(f"{restarted.url}/c/{conversation}/m/{message_id}/continue/")
        assert response.status_code == 200
        rest = ""
        for event, data, _ in browser.stream(
            restarted, path.split("?")[0] + f"?after={len(FIRST)}"
        ):
            if event == "comment" and data == "live":
                fake_upstream.release("continue")
            if event == "delta":
                rest += json.loads(data)["t"]
            if event in ("done", "error"):
                break
        assert rest == "and the end."
        message = Message.objects.get(pk=message_id)
        assert message.status == Message.Status.COMPLETE
        assert message.content == FIRST + "and the end."
    finally:
        restarted.stop()


@shared_layer
def test_a_worker_killed_before_its_checkpoint_loses_nothing_the_browser_saw(
    workers, account, fake_upstream
):
    """With Redis every frame is kept there before it is sent: a worker killed with SIGKILL
    between checkpoints leaves the answer with all the text the page had shown."""
    a = workers(CHAT_CHECKPOINT_SECONDS="600")  # no checkpoint happens before the crash
    fake_upstream.enqueue(Reply([*chunks(FIRST, size=9), Gate("hold"), Text("never sent")]))
    browser = Browser(account, a)
    conversation, path = browser.send(a, "Hello, then crash")
    message_id = path.split("/")[2]
    shown, _ = read_text(browser.stream(a, path), until=FIRST[-9:])
    assert shown == FIRST
    assert Message.objects.get(pk=message_id).content == ""  # nothing checkpointed yet

    a.kill9()
    restarted = Worker(a.env, port=a.port).start()
    try:
        message = wait_for(
            lambda: Message.objects.filter(
                pk=message_id, status=Message.Status.INTERRUPTED
            ).first(),
            what="the orphaned run to be marked interrupted",
        )
        assert message.content == shown
        assert FIRST.strip()[:40] in browser.client.get(f"{restarted.url}/c/{conversation}/").text
    finally:
        restarted.stop()
