"""The per-person limits hold when the sends come at once (docs/SECURITY.md rule 14): 24
simultaneous sends from one person never get more answers written than the limit, on SQLite
and on PostgreSQL alike (the suite runs on both)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections

from chatapp.conversations.chat_settings import chat_settings_validate
from chatapp.core.errors import LimitExceeded
from chatapp.models import Message
from chatapp.providers import catalog
from chatapp.turns.services import turn_start

pytestmark = [pytest.mark.django_db(transaction=True)]

SENDS = 24


def send_at_once(owner, count: int) -> list[object]:
    """`count` first messages of new conversations, all released at the same moment, each on
    its own thread and connection. Returns each send's Turn or LimitExceeded."""
    chat_settings = chat_settings_validate(
        spec=catalog.get_model_by_key("demo:demo"), system_prompt="", raw_options={}
    )
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def send(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = turn_start(
                owner=owner,
                conversation_id=uuid.uuid4(),
                text=f"message {index}",
                idempotency_key=uuid.uuid4(),
                chat_settings=chat_settings,
                worker_id=uuid.uuid4(),
            )
        except LimitExceeded as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_simultaneous_sends_never_exceed_the_answers_a_person_may_have_at_once(user, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "sends_per_minute": 1000}
    limit = settings.CHAT_LIMITS["active_turns_per_user"]
    results = send_at_once(user, SENDS)

    refused = [r for r in results if isinstance(r, LimitExceeded)]
    assert len(results) - len(refused) == limit
    assert len(refused) == SENDS - limit
    assert all(f"the limit is {limit} at a time" in r.message for r in refused)
    active = Message.objects.filter(
        conversation__owner=user, status__in=Message.ACTIVE_STATUSES
    ).count()
    assert active == limit


def test_simultaneous_sends_never_exceed_the_sends_a_person_may_make_a_minute(user, settings):
    settings.CHAT_LIMITS = {
        **settings.CHAT_LIMITS,
        "sends_per_minute": 5,
        "active_turns_per_user": 1000,
    }
    results = send_at_once(user, SENDS)
    refused = [r for r in results if isinstance(r, LimitExceeded)]
    assert len(results) - len(refused) == 5
    assert all("the limit is 5 per minute" in r.message for r in refused)
