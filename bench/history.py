"""S8: history, and the message tree at size. A conversation of 5,000 messages that is a tree
with 500 branch points (docs/ARCHITECTURE.md, "The message tree"): server time, bytes and
queries for its page, time for each older page; switching a version near the root, halfway
down and deep in the tree; the queries of a turn started at depth ~3,750 against a turn in
a fresh conversation; and a sidebar of 1,000 conversations.

Run by bench.run in a subprocess with the app's environment; prints one JSON document. The
rows are written the way the app writes them (answers carry their rendered HTML).

    python -m bench.history --messages 400 --branch-points 40 --conversations 60  # smaller
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
import uuid
from dataclasses import dataclass
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
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from chatapp import rendering  # noqa: E402
from chatapp.conversations.chat_settings import chat_settings_validate  # noqa: E402
from chatapp.conversations.tree import path as tree_path  # noqa: E402
from chatapp.models import Conversation, Message  # noqa: E402
from chatapp.providers import catalog  # noqa: E402
from chatapp.turns.services import turn_start  # noqa: E402

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


@dataclass(frozen=True, slots=True)
class Fork:
    """A branch point: the version on the main path and the older one beside it."""

    depth: int  # of both versions: how many messages are above them
    main_id: uuid.UUID
    other_id: uuid.UUID
    other_leaf_id: uuid.UUID  # the end of the older version's branch
    other_length: int  # the older version and the messages of its own branch below it


@dataclass(frozen=True, slots=True)
class Tree:
    conversation: Conversation
    messages: int
    main_path: int
    forks: list[Fork]


# The older versions beside the main path, in turn: an edited message with its answer, a
# regenerated answer alone, an edited message followed by one more turn, a regenerated answer
# followed by one more turn. Each branch ends with an answer, as a turn always does.
BRANCH_KINDS = [("user", 2), ("assistant", 1), ("user", 4), ("assistant", 3)]


def seed(messages: int, conversations: int, branch_points: int) -> tuple[Any, Tree]:
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
    tree = _seed_tree(long_one, messages, branch_points, start=now - timedelta(days=30))
    if connection.vendor == "postgresql":
        # The statistics a running database has (autovacuum analyzes a table within a minute
        # of a bulk load): with none for the rows just inserted, the planner reads each tree
        # walk's first row through the conversation index, all 5,000 rows of it, instead of
        # the primary key, and the figures depend on when autovacuum last ran.
        tables = ", ".join(
            connection.ops.quote_name(model._meta.db_table) for model in (Message, Conversation)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")
    return owner, tree


def _seed_tree(
    conversation: Conversation, messages: int, branch_points: int, *, start: Any
) -> Tree:
    """A tree of `messages`: a main path of user/answer pairs, and at `branch_points` of its
    pairs an older version of the message or the answer (BRANCH_KINDS) with a short branch
    of its own. The main path holds the newest versions and ends with the newest message, the
    current leaf; every message is newer than its parent (main message i at i * 10 s, a
    branch below main message p at p * 10 s + 1..4 s)."""
    kinds = [BRANCH_KINDS[k % len(BRANCH_KINDS)] for k in range(branch_points)]
    if kinds and (messages - sum(length for _, length in kinds)) % 2:
        # The main path is whole turns: the last branch takes one message more or less.
        role, length = kinds[-1]
        kinds[-1] = ("user", length + 1) if role == "assistant" else ("assistant", length - 1)
    main = messages - sum(length for _, length in kinds)
    pairs = main // 2
    if main < 2 or pairs < branch_points:
        raise ValueError(f"{messages} messages are too few for {branch_points} branch points")
    at_pair = [round(k * (pairs - 1) / max(branch_points - 1, 1)) for k in range(branch_points)]
    assert len(set(at_pair)) == branch_points, "two branch points on one pair"

    html = {text: rendering.render_markdown(text) for text in ANSWERS}

    def message(role: str, n: int, created: Any, parent_id: uuid.UUID | None) -> Message:
        if role == "user":
            return Message(
                id=uuid.uuid4(),
                conversation=conversation,
                parent_id=parent_id,
                role="user",
                content=QUESTIONS[n % 3],
                created_at=created,
            )
        text = ANSWERS[n % 3]
        return Message(
            id=uuid.uuid4(),
            conversation=conversation,
            parent_id=parent_id,
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

    step = timedelta(seconds=10)
    rows: list[Message] = []
    main_ids: list[uuid.UUID] = []
    for i in range(main):
        parent = main_ids[-1] if main_ids else None
        row = message("user" if i % 2 == 0 else "assistant", i, start + i * step, parent)
        rows.append(row)
        main_ids.append(row.pk)
    forks = []
    for (role, length), pair in zip(kinds, at_pair, strict=True):
        index = 2 * pair + (0 if role == "user" else 1)  # the main version's place
        parent = main_ids[index - 1] if index else None
        first = None
        for j in range(length):
            at = start + (index - 1) * step + timedelta(seconds=1 + j)
            row = message(role if j % 2 == 0 else _other(role), index + j + 1, at, parent)
            rows.append(row)
            first = first or row.pk
            parent = row.pk
        forks.append(Fork(index, main_ids[index], first, parent, length))
    # Oldest first: every parent is inserted before its children.
    rows.sort(key=lambda row: row.created_at)
    Message.objects.bulk_create(rows, batch_size=1000)
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=main_ids[-1])
    conversation.refresh_from_db()
    return Tree(conversation, len(rows), main, forks)


def _other(role: str) -> str:
    return "assistant" if role == "user" else "user"


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


TURN_REPEAT = 5


def switch(client: Client, tree: Tree, fork: Fork, repeat: int) -> dict[str, Any]:
    """Switch between the two versions of `fork`, `repeat` times, alternating (so each POST
    really changes the branch shown): server time (the test client's request), queries,
    bytes, and whether the view answered with the branch's HTML or with the whole thread (the
    branch below is longer than a page)."""
    conversation = tree.conversation
    main_leaf = conversation.current_leaf_id
    targets = {
        "to_other": (fork.other_id, fork.other_leaf_id),
        "to_main": (fork.main_id, main_leaf),
    }
    urls = {
        name: reverse("message-show", args=[conversation.id, message_id])
        for name, (message_id, _) in targets.items()
    }
    for url in urls.values():  # warm, as for the pages
        client.post(url)
    samples: dict[str, list[tuple[float, int, int, str]]] = {name: [] for name in targets}
    for i in range(repeat):
        name = "to_other" if i % 2 == 0 else "to_main"
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.post(urls[name])
            ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (urls[name], response.status_code)
        kind = "thread" if response.headers.get("HX-Retarget") == "#thread" else "html"
        samples[name].append((ms, len(response.content), len(captured.captured_queries), kind))
        leaf = Conversation.objects.values_list("current_leaf_id", flat=True).get(
            pk=conversation.pk
        )
        assert leaf == targets[name][1], (name, leaf, targets[name][1])
    # The branch shown is the main path again, whatever `repeat` was.
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=main_leaf)
    every = [sample[0] for runs in samples.values() for sample in runs]
    out: dict[str, Any] = {
        "depth": fork.depth,
        "main_below": tree.main_path - fork.depth,
        "other_branch": fork.other_length,
        "ms_p50": round(statistics.median(every), 2),
        "ms_max": round(max(every), 2),
    }
    for name, runs in samples.items():
        kinds = sorted({sample[3] for sample in runs})
        out[name] = {
            "ms_p50": round(statistics.median(sample[0] for sample in runs), 2),
            "ms_max": round(max(sample[0] for sample in runs), 2),
            "bytes": runs[-1][1],
            "queries": runs[-1][2],
            "response": "/".join(kinds),
        }
    return out


def _forks_to_switch(tree: Tree) -> dict[str, Fork]:
    """Near the root, halfway down, and deep: the deepest fork whose main version still has
    a branch of 20 to 49 messages below it (so both switches answer with the branch's HTML)."""
    forks = tree.forks
    deep = [f for f in forks if 20 <= tree.main_path - f.depth <= 49]
    return {
        "near_root": forks[0],
        "middle": forks[len(forks) // 2],
        "deep": deep[-1] if deep else forks[-1],
    }


def turn_starts(owner: Any, tree: Tree, repeat: int) -> dict[str, Any]:
    """The queries (and time) of turns.services.turn_start for a turn that follows the
    deepest leaf of the long conversation and for the second turn of a fresh conversation:
    the same count at any depth. No run is launched; each answer is marked complete at once
    (one active answer per conversation)."""
    spec = catalog.get_model("aimlapi", "google/gemini-2.5-flash") or catalog.default_model()
    chat_settings = chat_settings_validate(spec=spec, system_prompt="", raw_options={})
    worker_id = uuid.uuid4()

    def start(conversation_id: uuid.UUID, parent_id: uuid.UUID | None) -> tuple[Any, float, list]:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            turn = turn_start(
                owner=owner,
                conversation_id=conversation_id,
                text=QUESTIONS[1],
                idempotency_key=uuid.uuid4(),
                chat_settings=chat_settings,
                worker_id=worker_id,
                parent_id=parent_id,
            )
            ms = (time.perf_counter() - started) * 1000
        Message.objects.filter(pk=turn.assistant_message.pk).update(
            status=Message.Status.COMPLETE, content=ANSWERS[1], finished_at=timezone.now()
        )
        return turn, ms, [query["sql"] for query in captured.captured_queries]

    runs: dict[str, list[tuple[float, list]]] = {"deep": [], "fresh": []}
    depth = None
    for _ in range(repeat):
        leaf = Conversation.objects.values_list("current_leaf_id", flat=True).get(
            pk=tree.conversation.pk
        )
        depth = depth or len(
            tree_path(conversation_id=tree.conversation.pk, leaf_id=leaf, fields=["id"])
        )
        _, ms, sql = start(tree.conversation.pk, leaf)
        runs["deep"].append((ms, sql))
        first, _, _ = start(uuid.uuid4(), None)
        _, ms, sql = start(first.conversation.pk, first.assistant_message.pk)
        runs["fresh"].append((ms, sql))
    out: dict[str, Any] = {}
    for name, samples in runs.items():
        counts = sorted({len(sql) for _, sql in samples})
        out[name] = {
            "queries": counts[0] if len(counts) == 1 else counts,
            "ms_p50": round(statistics.median(ms for ms, _ in samples), 2),
            "ms_max": round(max(ms for ms, _ in samples), 2),
        }
    out["deep"]["follows_depth"] = depth
    out["fresh"]["follows_depth"] = 2
    out["equal"] = out["deep"]["queries"] == out["fresh"]["queries"]
    if not out["equal"]:
        out["sql"] = {name: [q[:160] for q in samples[-1][1]] for name, samples in runs.items()}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--branch-points", type=int, default=500)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20, help="page loads and switches")
    args = parser.parse_args(argv)
    settings.DEBUG = False
    owner, tree = seed(
        messages=args.messages,
        conversations=args.conversations,
        branch_points=args.branch_points,
    )
    conversation = tree.conversation
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    page = timed(client, f"/c/{conversation.id}/", repeat=args.repeat)
    older_pages = []
    html = page.pop("_html")
    for _ in range(5):
        match = re.search(r'hx-get="([^"]+/older/\?before=[^"]+)"', html)
        if not match:
            break
        older = timed(client, match.group(1).replace("&amp;", "&"), repeat=5)
        html = older.pop("_html")
        older_pages.append(older)
    sidebar = timed(client, "/", repeat=args.repeat)
    sidebar.pop("_html")
    switches = {
        name: switch(client, tree, fork, repeat=args.repeat)
        for name, fork in _forks_to_switch(tree).items()
    }
    turns = turn_starts(owner, tree, repeat=TURN_REPEAT)
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "conversation_messages": tree.messages,
                "main_path": tree.main_path,
                "branch_points": len(tree.forks),
                "sidebar_conversations": args.conversations,
                "conversation_page": page,
                "older_pages": older_pages,
                "new_chat_page_with_sidebar": sidebar,
                "version_switch": switches,
                "turn_start": turns,
            }
        )
    )


if __name__ == "__main__":
    main()
