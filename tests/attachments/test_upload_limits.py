"""Uploads cannot get around their limits or starve other people (docs/SECURITY.md rules 7
and 14): every attempt counts, the same image sent again is found before it is decoded, one
person's uploads are decoded at most two at a time, and on threads of their own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from chatapp import asgi
from chatapp.attachments import images
from chatapp.models import Attachment, UploadAttempt
from tests import imagegen
from tests.conftest import session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


def post_image(client: Client, data: bytes, name: str = "a.png") -> Any:
    return client.post(
        reverse("attachment-upload"),
        {"image": SimpleUploadedFile(name, data, content_type="image/png")},
    )


def test_the_same_image_sent_again_counts_against_the_limit(user_client, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "uploads_per_minute": 3}
    data = imagegen.png()
    for _ in range(3):
        assert post_image(user_client, data).status_code == 200
    refused = post_image(user_client, data)
    assert refused.status_code == 429
    assert "uploaded 3 images in the last minute; the limit is 3 per minute" in (
        refused.content.decode()
    )
    assert Attachment.objects.count() == 1
    assert UploadAttempt.objects.count() == 3


def test_the_same_image_sent_again_is_recognised_without_being_decoded(user_client, monkeypatch):
    decoded: list[int] = []
    real = images._decode

    def counting(raw: bytes, limits: Any) -> Any:
        decoded.append(len(raw))
        return real(raw, limits)

    monkeypatch.setattr(images, "_decode", counting)
    data = imagegen.png(300, 200)
    first = post_image(user_client, data)
    again = post_image(user_client, data, name="renamed.png")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content  # the same attachment
    assert len(decoded) == 1


def test_attempts_older_than_a_minute_are_forgotten(user, user_client, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "uploads_per_minute": 1}
    old = UploadAttempt.objects.create(owner=user)
    UploadAttempt.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert post_image(user_client, imagegen.png()).status_code == 200
    assert list(UploadAttempt.objects.values_list("pk", flat=True)) != [old.pk]
    assert UploadAttempt.objects.count() == 1


def test_the_upload_path_is_the_one_the_asgi_handler_sends_to_upload_threads():
    assert reverse("attachment-upload") == asgi.UPLOAD_PATH


class HeldDecodes:
    """Decoding that waits until released, to hold uploads mid-way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        real = images._decode

        def held(raw: bytes, limits: Any) -> Any:
            self.started.release()
            self.release.wait(30)
            return real(raw, limits)

        monkeypatch.setattr(images, "_decode", held)

    async def wait_started(self, count: int) -> None:
        for _ in range(count):
            assert await asyncio.to_thread(self.started.acquire, True, 10)


def asgi_request(method: str, path: str, cookie: bytes, body: bytes = b"", **headers: str):
    token = headers.pop("csrf")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"cookie", cookie + b"; csrftoken=" + token.encode()),
            (b"x-csrftoken", token.encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(asgi.application, scope)
    return communicator, body


async def respond(communicator: ApplicationCommunicator, body: bytes, timeout: float = 15) -> int:
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout)
    while True:  # the body, to the end
        part = await communicator.receive_output(timeout)
        if not part.get("more_body"):
            break
    return start["status"]


async def test_one_persons_upload_burst_neither_blocks_the_server_nor_queues_anyone_behind_it(
    user, other_user, monkeypatch
):
    held = HeldDecodes(monkeypatch)
    token = _get_new_csrf_string()
    mine = session_cookie(await sync_to_async(logged_in)(user))
    theirs = session_cookie(await sync_to_async(logged_in)(other_user))
    body = encode_multipart(
        BOUNDARY, {"image": SimpleUploadedFile("big.png", imagegen.png(400, 300))}
    )
    headers = {"content-type": MULTIPART_CONTENT, "content-length": str(len(body)), "csrf": token}

    # Sixteen uploads at once from one person: two are decoded, the others are turned away.
    burst = [asgi_request("POST", "/attachments/", mine, body, **headers) for _ in range(16)]
    answers = [asyncio.ensure_future(respond(c, b, timeout=30)) for c, b in burst]
    await held.wait_started(2)
    refused = []
    for answer in asyncio.as_completed(answers, timeout=20):
        refused.append(await answer)
        if len(refused) == 14:
            break
    assert refused == [429] * 14

    # Meanwhile the server answers everyone else at once.
    health, empty = asgi_request("GET", "/healthz", theirs, csrf=token)
    assert await respond(health, empty, timeout=5) == 200
    held.release.set()
    await asyncio.gather(*answers)
    statuses = sorted(a.result() for a in answers)
    assert statuses == [200, 200] + [429] * 14


def logged_in(person: Any) -> Client:
    client = Client()
    client.force_login(person)
    return client
