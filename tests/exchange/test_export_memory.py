"""The export's memory does not grow with what is exported: the Python allocations at their
peak while the whole zip streams are about the same for 1,000 messages as for 6,000 (rows
are read a chunk at a time, each piece handed on at once). bench S12 measures the server at
100,000 messages."""

from __future__ import annotations

import tracemalloc
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from chatapp.exchange.export import conversations_zip
from chatapp.models import Conversation, Message

pytestmark = [pytest.mark.django_db]

ANSWER = "A paragraph of an answer, long enough to be like one. " * 8


def seed(owner, messages: int) -> None:
    start = timezone.now() - timedelta(days=1)
    conversation = Conversation.objects.create(
        owner=owner, title="Long", route="aimlapi", model="google/gemini-2.5-flash"
    )
    rows: list[Message] = []
    for i in range(messages):
        rows.append(
            Message(
                id=uuid.uuid4(),
                conversation=conversation,
                parent_id=rows[-1].pk if rows else None,
                role="assistant" if i % 2 else "user",
                content=ANSWER if i % 2 else "A question?",
                created_at=start + timedelta(seconds=i),
            )
        )
    Message.objects.bulk_create(rows, batch_size=1000)
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=rows[-1].pk)


def peak_while_exporting(owner) -> tuple[int, int]:
    tracemalloc.start()
    size = sum(len(piece) for piece in conversations_zip(owner))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, size


def test_exporting_six_times_the_messages_takes_about_the_same_memory(user, other_user):
    seed(user, 1_000)
    seed(other_user, 6_000)
    small_peak, small_size = peak_while_exporting(user)
    large_peak, large_size = peak_while_exporting(other_user)
    assert large_size > 5 * small_size
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)
