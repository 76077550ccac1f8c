"""S8: history pages. A conversation of 5,000 messages (server time, bytes and queries for its
page; time for each older page) and a sidebar of 1,000 conversations.

Run by bench.run in a subprocess with the app's environment; prints one JSON document. The
rows are written the way the app writes them (answers carry their rendered HTML).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from chatapp import rendering  # noqa: E402
from chatapp.models import Conversation, Message  # noqa: E402

ANSWERS = [
    "Here is how that works:\n\n1. **First**, the request is validated.\n2. Then it is *streamed*.\n\n"
    "```python\ndef answer(question: str) -> str:\n    return question.upper()\n```\n\n"
    "That is all there is to it — see [the docs](https://example.com/docs) for more. " * 2,
    "Short answer: yes. The longer answer depends on the model's context window, the size of "
    "the images you attach and whether the route streams. " * 3,
    "| Model | Context | Output |\n|---|---|---|\n| Gemini 2.5 Flash | 1M | 65k |\n"
    "| Gemini 2.5 Pro | 1M | 65k |\n\nBoth accept images. " * 2,
]
QUESTIONS = [
    "How does streaming work when I reload the page?",
    "Can you compare the two models for me, briefly?",
    "Write a function that upper-cases a string, with types.",
]


def seed(messages: int, conversations: int) -> tuple[Any, Conversation]:
    owner, _ = get_user_model().objects.get_or_create(
        username=f"bench-history-{uuid.uuid4().hex[:6]}"
    )
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(
            owner=owner,
            title=f"Conversation {i}: {random.choice(QUESTIONS)}",
            route="aimlapi",
            model="google/gemini-2.5-flash",
            updated_at=now - timedelta(minutes=i),
        )
        for i in range(conversations - 1)
    )
    long_one = Conversation.objects.create(
        owner=owner, title="The long one", route="aimlapi", model="google/gemini-2.5-flash"
    )
    html = {text: rendering.render_markdown(text) for text in ANSWERS}
    rows = []
    start = now - timedelta(days=30)
    for i in range(messages):
        created = start + timedelta(seconds=i)
        if i % 2 == 0:
            rows.append(
                Message(
                    conversation=long_one, role="user", content=QUESTIONS[i % 3], created_at=created
                )
            )
        else:
            text = ANSWERS[i % 3]
            rows.append(
                Message(
                    conversation=long_one,
                    role="assistant",
                    content=text,
                    content_html=html[text],
                    html_version=rendering.RENDERER_VERSION,
                    status="complete",
                    route="aimlapi",
                    model="google/gemini-2.5-flash",
                    model_reported="google/gemini-2.5-flash",
                    prompt_tokens=120,
                    completion_tokens=300,
                    total_tokens=420,
                    credits_used=12,
                    ttft_ms=410,
                    duration_ms=5200,
                    finish_reason="stop",
                    created_at=created,
                    finished_at=created,
                )
            )
    Message.objects.bulk_create(rows, batch_size=1000)
    return owner, long_one


def timed(client: Client, path: str, repeat: int) -> dict[str, Any]:
    client.get(path)  # warm: template and lexer caches, like a running server
    times, size, queries = [], 0, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        size, queries = len(response.content), len(captured.captured_queries)
    return {
        "ms_p50": round(statistics.median(times), 2),
        "ms_max": round(max(times), 2),
        "bytes": size,
        "queries": queries,
        "_html": response.content.decode(),
    }


def main() -> None:
    settings.DEBUG = False
    owner, conversation = seed(messages=5000, conversations=1000)
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    page = timed(client, f"/c/{conversation.id}/", repeat=20)
    older_pages = []
    html = page.pop("_html")
    import re

    for _ in range(5):
        match = re.search(r'hx-get="([^"]+/older/\?before=[^"]+)"', html)
        if not match:
            break
        older = timed(client, match.group(1).replace("&amp;", "&"), repeat=5)
        html = older.pop("_html")
        older_pages.append(older)
    sidebar = timed(client, "/", repeat=20)
    sidebar.pop("_html")
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "conversation_messages": 5000,
                "sidebar_conversations": 1000,
                "conversation_page": page,
                "older_pages": older_pages,
                "new_chat_page_with_sidebar": sidebar,
            }
        )
    )


if __name__ == "__main__":
    main()
