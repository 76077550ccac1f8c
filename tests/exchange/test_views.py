"""The "Import conversations" page: GET shows the form, POST imports and shows the report (a
fragment for htmx), refusals name their limit and are never a 500, CSRF is needed; the body
limit in front of Django names the import's limit on this page."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import Client
from django.urls import reverse

from chatapp.models import Conversation
from chatapp.web.middleware import RequestBodyLimit
from tests.exchange.conftest import as_upload, chatgpt_node, chatgpt_with, sample, sample_bytes

pytestmark = [pytest.mark.django_db]

URL = "/import/"


def test_the_import_page_is_at_import_and_names_its_limits(user_client):
    assert reverse("conversations-import") == URL
    page = user_client.get(URL)
    assert page.status_code == 200
    text = page.content.decode()
    assert "<h1>Import conversations</h1>" in text
    assert 'type="file"' in text
    assert 'name="file"' in text
    assert "Up to 50 MB a file" in text
    assert reverse("conversations-export") in text


def test_posting_a_file_imports_it_and_shows_the_report_with_links(user, user_client):
    response = user_client.post(URL, {"file": as_upload(sample_bytes("chatgpt-export.json"))})
    assert response.status_code == 200
    text = response.content.decode()
    assert "Imported 2 conversations from ChatGPT" in text
    conversation = Conversation.objects.filter(owner=user).first()
    assert f'href="/c/{conversation.id}/"' in text
    assert "Not carried: 4 tool calls" in text


def test_an_htmx_post_gets_the_report_alone(user_client):
    response = user_client.post(
        URL, {"file": as_upload(sample_bytes("chatgpt-tree.json"))}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Imported 1 conversation from ChatGPT" in text
    assert "<html" not in text


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        ({}, 400, "Choose one export file"),
        ({"file": as_upload(b"not json at all")}, 400, "This file is not JSON"),
        ({"file": as_upload(b'{"a": 1}')}, 400, "not an export this server reads"),
    ],
)
def test_a_refusal_says_why_and_that_nothing_was_imported(user_client, files, status, words):
    response = user_client.post(URL, files, headers={"HX-Request": "true"})
    assert response.status_code == status
    text = response.content.decode()
    assert words in text
    assert "Nothing was imported." in text
    assert not Conversation.objects.exists()


def test_a_file_over_the_limit_is_a_413_naming_it(user_client, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "import_bytes": 1_000_000}
    response = user_client.post(URL, {"file": as_upload(b" " * 2_999_998 + b"[]")})
    assert response.status_code == 413
    assert "This file is 3 MB; the limit is 1 MB for an import." in response.content.decode()


def test_importing_needs_csrf(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(URL, {"file": as_upload(sample_bytes("chatgpt-tree.json"))})
    assert response.status_code == 403
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("url", [URL, "/export/"])
def test_anonymous_is_sent_to_log_in(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_body_limit_in_front_of_django_names_the_import_limit_on_the_import_page():
    sent: list[dict] = []

    async def app(scope, receive, send):  # never reached
        raise AssertionError("the body should have been refused")

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    def scope(path: str, size: int) -> dict:
        return {"type": "http", "path": path, "headers": [(b"content-length", str(size).encode())]}

    asyncio.run(RequestBodyLimit(app)(scope(URL, 120_000_000), receive, send))
    assert sent[0]["status"] == 413
    assert sent[1]["body"] == b"This upload is 120 MB; the limit is 50 MB for an import."
    sent.clear()
    asyncio.run(RequestBodyLimit(app)(scope("/attachments/", 60_000_000), receive, send))
    assert sent[1]["body"] == b"This upload is 60 MB; the limit is 50 MB for an image."


def test_hostile_text_in_an_import_stays_text_on_the_report_and_in_the_thread(user, user_client):

    (conversation,) = sample("chatgpt-tree.json")
    conversation = dict(conversation, title="<script>alert(1)</script>" + "x" * 200)
    hostile = chatgpt_node(
        "hostile",
        "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8",
        "tool",
        {"content_type": "text", "parts": ['<img src=x onerror="alert(2)">']},
        name="browser",
    )
    answer = chatgpt_node(
        "answer",
        "hostile",
        "assistant",
        {"content_type": "text", "parts": ["<svg onload=alert(3)> [x](javascript:alert(4))"]},
        create_time=1714585099.0,
    )
    data = json.dumps([chatgpt_with(conversation, hostile, answer)]).encode()
    report = user_client.post(URL, {"file": as_upload(data)}).content.decode()
    assert "<script>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "<img" not in report
    imported = Conversation.objects.get(owner=user)
    assert len(imported.title) == 80
    page = user_client.get(f"/c/{imported.id}/").content.decode()
    assert "<svg" not in page
    assert 'href="javascript' not in page
    assert "&lt;svg onload=alert(3)&gt;" in page
