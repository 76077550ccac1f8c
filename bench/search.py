"""S11: search. 100,000 messages in 2,000 conversations of one person (and a second person's
10,000, which no result may include), then "Search conversations" timed through the view
(server time p50/p95/max over a mix of queries: a frequent word, a rare one, two words, a
phrase, a word left out, OR, a word no message has), and the extra cost of keeping the index
on every write: a finished message inserted, and a streamed answer's final UPDATE, with the
search triggers and index and without them (dropped inside a transaction that is rolled
back).

Run by bench.run in a subprocess with the app's environment; prints one JSON document.

    python -m bench.search [messages] [conversations]
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from chatapp.models import Conversation, Message  # noqa: E402

RNG = random.Random(11)
# A vocabulary with a long tail: word i is drawn with weight 1 / (i + 1) (Zipf), so a few
# words are in most messages and most are in few.
VOCABULARY = [f"{a}{b}{c}" for a in "bcdfgklmnprst" for b in "aeiou" for c in "lmnrstxz"]
WEIGHTS = [1 / (i + 1) for i in range(len(VOCABULARY))]


def _text(words: int) -> str:
    return " ".join(RNG.choices(VOCABULARY, WEIGHTS, k=words)).capitalize() + "."


def seed(messages: int, conversations: int) -> Any:
    User = get_user_model()
    owner = User.objects.create(username=f"bench-search-{uuid.uuid4().hex[:6]}")
    other = User.objects.create(username=f"bench-search-other-{uuid.uuid4().hex[:6]}")
    now = timezone.now()
    for person, count, chats in ((owner, messages, conversations), (other, messages // 10, 200)):
        rows = Conversation.objects.bulk_create(
            Conversation(
                owner=person,
                title=_text(4),
                route="aimlapi",
                model="google/gemini-2.5-flash",
                updated_at=now - timedelta(minutes=i),
            )
            for i in range(chats)
        )
        per_chat = count // chats
        batch: list[Message] = []
        for conversation in rows:
            parent = None
            for i in range(per_chat):
                message = Message(
                    id=uuid.uuid4(),
                    conversation=conversation,
                    parent_id=parent,
                    role="user" if i % 2 == 0 else "assistant",
                    content=_text(20 if i % 2 == 0 else 70),
                    status="complete",
                    created_at=now - timedelta(days=30) + timedelta(seconds=i),
                )
                parent = message.id
                batch.append(message)
            conversation.current_leaf_id = parent
            if len(batch) >= 5000:
                Message.objects.bulk_create(batch)
                batch = []
        Message.objects.bulk_create(batch)
        Conversation.objects.bulk_update(rows, ["current_leaf_id"], batch_size=1000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE chatapp_message")
            cursor.execute("ANALYZE chatapp_conversation")
    return owner


def queries() -> dict[str, str]:
    frequent, second = VOCABULARY[0], VOCABULARY[1]
    middling, rare = VOCABULARY[40], VOCABULARY[-1]
    return {
        "frequent word": frequent,
        "rare word": rare,
        "two words": f"{middling} {VOCABULARY[60]}",
        "phrase": f'"{frequent} {second}"',
        "word left out": f"{middling} -{frequent}",
        "either word": f"{rare} OR {VOCABULARY[-2]}",
        "no match": "zzzqqq",
    }


def timed_search(client: Client, raw: str, repeat: int) -> dict[str, Any]:
    client.get("/search/", {"q": raw})  # warm
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/search/", {"q": raw})
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    html = response.content.decode()
    return {
        "times": times,
        "ms_p50": round(statistics.median(times), 2),
        "results": html.count('class="hit-title"'),
        "queries": len(captured.captured_queries),
    }


def write_cost(conversation: Conversation, repeat: int) -> dict[str, Any]:
    """Median ms of inserting a finished 1 KB message and of a streamed answer's final UPDATE
    (pending -> complete with its text): with the index kept in step, and without."""

    def measure() -> tuple[float, float]:
        inserts, finals = [], []
        for _ in range(repeat):
            text = _text(150)
            started = time.perf_counter()
            Message.objects.create(
                conversation=conversation, role="user", content=text, status="complete"
            )
            inserts.append((time.perf_counter() - started) * 1000)
            answer = Message.objects.create(
                conversation=conversation, role="assistant", status="streaming", content=""
            )
            started = time.perf_counter()
            Message.objects.filter(pk=answer.pk).update(status="complete", content=text)
            finals.append((time.perf_counter() - started) * 1000)
        return statistics.median(inserts), statistics.median(finals)

    class Rollback(Exception):
        pass

    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            result["with_index"] = measure()
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("DROP TRIGGER chatapp_message_search ON chatapp_message")
                    cursor.execute("DROP INDEX chatapp_message_search")
                else:
                    for name in ("insert", "update", "delete"):
                        cursor.execute(f"DROP TRIGGER chatapp_search_message_{name}")
            result["without_index"] = measure()
            raise Rollback
    except Rollback:
        pass
    (insert_on, final_on), (insert_off, final_off) = result["with_index"], result["without_index"]
    return {
        "insert_ms": [round(insert_on, 3), round(insert_off, 3)],
        "final_update_ms": [round(final_on, 3), round(final_off, 3)],
        "extra_insert_ms": round(insert_on - insert_off, 3),
        "extra_final_update_ms": round(final_on - final_off, 3),
    }


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    conversations = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    repeat = 20
    started = time.perf_counter()
    owner = seed(messages, conversations)
    seed_seconds = round(time.perf_counter() - started, 1)
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    cases = {name: timed_search(client, raw, repeat) for name, raw in queries().items()}
    every = sorted(t for case in cases.values() for t in case.pop("times"))
    conversation = Conversation.objects.filter(owner=owner).first()
    assert conversation is not None
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "messages": messages,
                "conversations": conversations,
                "seed_seconds": seed_seconds,
                "ms_p50": round(statistics.median(every), 2),
                "ms_p95": round(every[int(len(every) * 0.95) - 1], 2),
                "ms_max": round(every[-1], 2),
                "cases": cases,
                "writes": write_cost(conversation, repeat=50),
            }
        )
    )


if __name__ == "__main__":
    main()
