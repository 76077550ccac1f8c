"""S6: SQL statements and bytes written per streamed message.

Run by bench.run in a subprocess with the app's environment (database, fake upstream), so the
real service, run and adapter write exactly as in production. Prints one JSON document.

    python -m bench.writes 250:250 1000:250 4000:250 1000:50    # tokens:rate per message
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402

from bench.streams import prompt  # noqa: E402
from chatapp.conversations.chat_settings import chat_settings_validate  # noqa: E402
from chatapp.providers import catalog  # noqa: E402
from chatapp.turns.manager import manager  # noqa: E402
from chatapp.turns.requests import turn_request  # noqa: E402
from chatapp.turns.services import turn_start  # noqa: E402
from chatapp.turns.workers import WORKER_ID  # noqa: E402


class StatementLog:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        size = sum(len(str(p).encode()) for p in (params or ()) if p is not None)
        with self.lock:
            self.rows.append((sql, size))
        return execute(sql, params, many, context)

    def take(self) -> list[tuple[str, int]]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows


LOG = StatementLog()


def _install(sender: Any, connection: Any, **kwargs: Any) -> None:
    if LOG not in connection.execute_wrappers:
        connection.execute_wrappers.append(LOG)


connection_created.connect(_install)


def _kind(sql: str) -> str:
    verb = sql.lstrip().split(None, 1)[0].upper()
    return verb if verb in ("INSERT", "UPDATE", "DELETE", "SELECT") else "OTHER"


def _wal_position() -> int | None:
    """PostgreSQL's WAL position in bytes: the difference is what the database wrote for the
    run. (SQLite's WAL file is checkpointed and truncated under us: no reliable figure.)"""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def _start(owner: Any, text: str) -> tuple[Any, Any]:
    chat_settings = chat_settings_validate(
        spec=catalog.get_model_by_key("aimlapi:google/gemini-2.5-flash"),
        system_prompt="",
        raw_options={},
    )
    turn = turn_start(
        owner=owner,
        conversation_id=uuid.uuid4(),
        text=text,
        idempotency_key=uuid.uuid4(),
        chat_settings=chat_settings,
        worker_id=WORKER_ID,
    )
    return turn, turn_request(message=turn.assistant_message)


def _summary(rows: list[tuple[str, int]]) -> dict[str, Any]:
    writes = [(sql, size) for sql, size in rows if _kind(sql) in ("INSERT", "UPDATE", "DELETE")]
    return {
        "statements": len(rows),
        "writes": len(writes),
        "writes_by_table": {
            table: sum(1 for sql, _ in writes if table in sql)
            for table in ("chatapp_message", "chatapp_conversation", "chatapp_worker")
        },
        "updates_message": sum(
            1 for sql, _ in writes if _kind(sql) == "UPDATE" and "chatapp_message" in sql
        ),
        "bytes_sent_in_writes": sum(size for _, size in writes),
    }


async def measure(tokens: int, rate: float) -> dict[str, Any]:
    owner, _ = await get_user_model().objects.aget_or_create(username="bench-writes")
    LOG.take()
    turn, request = await sync_to_async(_start)(owner, prompt(tokens, rate, 1, 0.1))
    request_rows = LOG.take()
    wal_before = await sync_to_async(_wal_position)()
    started = time.monotonic()
    runs = manager()
    await runs.launch(message_id=turn.assistant_message.id, route="aimlapi", request=request)
    task = runs.running(turn.assistant_message.id)
    if task is not None:
        await task
    duration = time.monotonic() - started
    run_rows = LOG.take()
    wal_after = await sync_to_async(_wal_position)()
    message = await turn.assistant_message.__class__.objects.aget(pk=turn.assistant_message.id)
    assert message.status == "complete", (message.status, message.error_message)
    return {
        "tokens": tokens,
        "rate": rate,
        "duration_s": round(duration, 2),
        "answer_chars": len(message.content),
        "turn_start": _summary(request_rows),
        "run": _summary(run_rows),
        "wal_bytes_during_run": None if wal_before is None else wal_after - wal_before,
    }


async def main(cases: list[tuple[int, float]]) -> None:
    runs = manager()
    await runs.start()
    # Connections opened before the log was installed would go unseen.
    await sync_to_async(connections.close_all)()
    LOG.take()
    results = []
    for tokens, rate in cases:
        results.append(await measure(tokens, rate))
    await runs.shutdown()
    print(json.dumps({"vendor": connection.vendor, "messages": results}))


if __name__ == "__main__":
    parsed = [(int(t), float(r)) for t, r in (arg.split(":") for arg in sys.argv[1:])]
    asyncio.run(main(parsed or [(250, 250), (1000, 250)]))
