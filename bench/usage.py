"""S13: the Usage page. A year of 100,000 answers of one person (each with its question, in 500
conversations, answers spread evenly over the 365 days before now, with tokens, credits and
dollars recorded) and 10,000 of a second person's; then the page timed through the view: the current
month, and the last whole month, the person's own and, as an administrator, everyone's (server time
p50/max, queries). Target: ≤ 100 ms.

Run by bench.run in a subprocess with the app's environment; prints one JSON document.

    python -m bench.usage [answers]
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
from decimal import Decimal
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from chatapp.models import Conversation, Message  # noqa: E402

RNG = random.Random(13)
MODELS = [
    ("aimlapi", "google/gemini-2.5-flash"),
    ("gemini", "gemini-2.5-pro"),
    ("segmind", "gemini-2.5-flash"),
]


def seed(answers: int) -> tuple[Any, Any]:
    User = get_user_model()
    owner = User.objects.create_superuser(username=f"bench-usage-{uuid.uuid4().hex[:6]}")
    other = User.objects.create(username=f"bench-usage-other-{uuid.uuid4().hex[:6]}")
    now = timezone.now()
    for person, count in ((owner, answers), (other, answers // 10)):
        chats = Conversation.objects.bulk_create(
            Conversation(owner=person, title="usage", route=route, model=model)
            for route, model in (MODELS * 200)[:500]
        )
        batch: list[Message] = []
        step = timedelta(days=365) / count
        for i in range(count):
            chat = chats[i % len(chats)]
            when = now - timedelta(days=365) + step * i
            question = Message(
                id=uuid.uuid4(), conversation=chat, role="user", content="q", created_at=when
            )
            batch.append(question)
            batch.append(
                Message(
                    id=uuid.uuid4(),
                    conversation=chat,
                    parent_id=question.id,
                    role="assistant",
                    content="a",
                    status="complete",
                    route=chat.route,
                    model=chat.model,
                    prompt_tokens=RNG.randint(10, 5000),
                    completion_tokens=RNG.randint(10, 2000),
                    reasoning_tokens=RNG.randint(0, 500),
                    credits_used=Decimal(RNG.randint(1, 10_000)) / 1000,
                    usd_spent=Decimal(RNG.randint(1, 10_000)) / 100_000,
                    created_at=when,
                )
            )
            if len(batch) >= 10_000:
                Message.objects.bulk_create(batch)
                batch = []
        Message.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE chatapp_message")
            cursor.execute("ANALYZE chatapp_conversation")
    return owner, other


def timed(client: Client, params: dict[str, str], repeat: int) -> dict[str, Any]:
    client.get("/usage/", params)  # warm
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/usage/", params)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return {
        "ms_p50": round(statistics.median(times), 2),
        "ms_max": round(max(times), 2),
        "queries": len(captured.captured_queries),
        "bytes": len(response.content),
    }


def main() -> None:
    answers = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    started = time.perf_counter()
    owner, _ = seed(answers)
    seeded_s = time.perf_counter() - started
    client = Client(HTTP_HOST="localhost")
    first = timezone.now().date().replace(day=1)
    last = f"{(first - timedelta(days=1)):%Y-%m}"
    client.force_login(owner)
    result = {
        "answers": answers,
        "database": connection.vendor,
        "seed_s": round(seeded_s, 1),
        "own_this_month": timed(client, {}, 20),
        # The last whole month: ~8,300 of the person's answers (~9,100 everyone's).
        "own_last_month": timed(client, {"month": last}, 20),
        "everyone_last_month": timed(client, {"month": last, "who": "everyone"}, 20),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
