"""Every value a URL carries is parsed defensively: hostile page cursors, `current`, the SSE
stream's `after` and `Last-Event-ID` get a clear refusal or are ignored, never a 500."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from chatapp.models import Conversation, Message
from tests.conftest import open_stream

pytestmark = [pytest.mark.django_db(transaction=True)]

ID = uuid.uuid4().hex
HOSTILE_CURSORS = [
    f"9999-12-31T23:59:59-14:00_{ID}",  # exists locally, not in UTC: the adapter overflowed
    f"0001-01-01T00:00:00+14:00_{ID}",
    f"2026-01-01T00:00:00_{ID}",  # naive: Django would warn and guess a zone
    f"2026-13-45T00:00:00+00:00_{ID}",
    "2026-01-01T00:00:00+00:00_not-a-uuid",
    "_",
    "%00",
    "\x00",
    "' OR 1=1 --",
    "9" * 10_000,
    f"{'9' * 5000}-01-01T00:00:00+00:00_{ID}",
]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
def test_a_hostile_sidebar_cursor_is_a_404_never_a_500(user_client, cursor):
    response = user_client.get(reverse("sidebar-more"), {"before": cursor})
    assert response.status_code == 404


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
def test_a_hostile_older_messages_cursor_is_a_404_never_a_500(user_client, user, cursor):
    conversation = Conversation.objects.create(owner=user, route="demo", model="demo")
    response = user_client.get(
        reverse("conversation-older", args=[conversation.id]), {"before": cursor}
    )
    assert response.status_code == 404


@pytest.mark.parametrize("current", ["<script>alert(1)</script>", "\x00", "x" * 10_000, '"'])
def test_the_sidebars_current_id_is_only_compared_never_trusted(user_client, user, current):
    Conversation.objects.create(owner=user, route="demo", model="demo", title="Mine")
    response = user_client.get(reverse("sidebar-more"), {"current": current})
    assert response.status_code == 200
    assert "<script>alert" not in response.content.decode()
    assert "Mine" in response.content.decode()


@pytest.mark.parametrize(
    ("after", "last_event_id"),
    [
        ("99999999999999999999999999999", None),
        ("-5", None),
        ("1e3", None),
        ("\x00", None),
        (None, "99999999999999999999999999999"),
        (None, "abc"),
        (None, "-1"),
    ],
)
async def test_a_hostile_resume_offset_still_ends_the_stream(
    user, cookie, after, last_event_id, run_manager
):
    conversation = await Conversation.objects.acreate(owner=user, route="demo", model="demo")
    message = await Message.objects.acreate(
        conversation=conversation, role="assistant", status="complete", content="Done."
    )
    stream = open_stream(
        message.id,
        cookie=cookie,
        after=after,
        last_event_id=last_event_id,
    )
    await stream.start()
    assert stream.status == 200
    _, end = await stream.read_until_terminal()
    assert end.event == "done"
    assert "Done." in end.data
