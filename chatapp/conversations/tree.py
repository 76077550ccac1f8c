"""The message tree (docs/ARCHITECTURE.md, "The message tree"): the one place that walks it.

Each message has a parent; siblings are versions (an answer regenerated, a message edited);
a conversation's thread is the path from the root to its `current_leaf`. Paths and subtrees
are read with a recursive CTE in one query, on SQLite and PostgreSQL alike, never by loading
the tree into Python: each step of a walk up is one primary-key lookup, and a page stops the
walk after its `limit` rows, so a page costs the same at depth 5,000 as at depth 50 (S8).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from django.db import connection

from chatapp.attachments.models import Attachment, MessageAttachment
from chatapp.core.sql import field_of

from .models import Message, Versions

# A walk up stops here whatever happens: the tree is acyclic by construction (a message's
# parent is always older), and this bound keeps a corrupted row from looping a query.
MAX_DEPTH = 1_000_000


def _db(value: uuid.UUID) -> Any:
    """A UUID as this database stores it (SQLite: hex text; PostgreSQL: uuid)."""
    return Message._meta.get_field("id").get_db_prep_value(value, connection)


def _table() -> str:
    return connection.ops.quote_name(Message._meta.db_table)


def _columns(fields: Sequence[str] | None) -> str:
    """The model's own columns, not `m.*`: PostgreSQL's table also holds the search index's
    tsvector (conversations/search.py), which a page has no use for."""
    quote = connection.ops.quote_name
    if fields is None:
        fields = [f.name for f in Message._meta.concrete_fields]
    names = ["id", *(name for name in fields if name != "id")]
    columns = [getattr(Message._meta.get_field(name), "column", name) for name in names]
    return ", ".join(f"m.{quote(str(column))}" for column in columns)


def path(
    *,
    conversation_id: uuid.UUID,
    leaf_id: uuid.UUID,
    limit: int = MAX_DEPTH,
    stop_at: uuid.UUID | None = None,
    above: bool = False,
    fields: Sequence[str] | None = None,
    versions: bool = False,
) -> list[Message]:
    """The path that ends at `leaf_id` (or, with `above`, at its parent), root first: at most
    its last `limit` messages, and none above `stop_at` when it is on the path. `fields`
    limits the columns read (the id is always read); `versions` sets each message's
    `versions` in the same query (a page needs them).

    The walk starts from the primary key alone and the conversation is checked on the rows
    it returns: a start row filtered by both let PostgreSQL, on fresh statistics, choose the
    conversation's index and read every message of it first (S8: 18 ms instead of 10)."""
    sql, params = _path_sql(
        conversation_id=conversation_id,
        leaf_id=leaf_id,
        limit=limit,
        stop_at=stop_at,
        above=above,
        columns=_columns(fields),
        versions=versions,
    )
    rows = list(Message.objects.raw(sql, params))
    if versions:
        for row in rows:
            row.versions = _versions_of(row)
    return rows


def path_values(
    *, conversation_id: uuid.UUID, leaf_id: uuid.UUID, fields: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The path that ends at `leaf_id`, root first, as rows of `fields` (text, JSON and UUID
    columns, converted as the model would). What a request sends is read this way:
    building a model instance per message made the request of a turn after 200 messages cost
    8.5 ms against 1.3 ms after none (bench "turn cost"); it must grow only with what it
    sends."""
    columns = [field_of(Message, name) for name in fields]
    sql, params = _path_sql(
        conversation_id=conversation_id,
        leaf_id=leaf_id,
        columns=", ".join(f"m.{connection.ops.quote_name(str(c.column))}" for c in columns),
    )
    steps = [
        (index, step)
        for index, column in enumerate(columns)
        if (step := _DECODE.get(column.get_internal_type())) is not None
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not steps:
        return rows
    decoded = []
    for row in rows:
        values = list(row)
        for index, step in steps:
            values[index] = step(values[index])
        decoded.append(tuple(values))
    return decoded


def _json_value(value: Any) -> Any:
    # SQLite hands JSON back as text; psycopg has decoded jsonb already.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _uuid_value(value: Any) -> Any:
    # SQLite keeps UUIDs as hex text; psycopg returns uuid.UUID.
    return uuid.UUID(value) if isinstance(value, str) else value


_DECODE = {"JSONField": _json_value, "UUIDField": _uuid_value}


def _path_sql(
    *,
    conversation_id: uuid.UUID,
    leaf_id: uuid.UUID,
    columns: str,
    limit: int = MAX_DEPTH,
    stop_at: uuid.UUID | None = None,
    above: bool = False,
    versions: bool = False,
) -> tuple[str, list[Any]]:
    table = _table()
    start = (
        f"SELECT parent_id, 0 FROM {table} WHERE id = %s AND parent_id IS NOT NULL"
        if above
        else f"SELECT id, 0 FROM {table} WHERE id = %s"
    )
    params: list[Any] = [_db(leaf_id), min(limit, MAX_DEPTH)]
    stop = ""
    if stop_at is not None:
        stop = " AND m.id <> %s"
        params.append(_db(stop_at))
    params.append(_db(conversation_id))
    extra = f", {_VERSION_COLUMNS.format(table=table)}" if versions else ""
    sql = (
        f"WITH RECURSIVE walk(id, depth) AS ({start} UNION ALL "
        f"SELECT m.parent_id, w.depth + 1 FROM {table} m JOIN walk w ON m.id = w.id "
        f"WHERE m.parent_id IS NOT NULL AND w.depth + 1 < %s{stop}) "
        f"SELECT {columns}{extra} FROM walk JOIN {table} m ON m.id = walk.id "
        "WHERE m.conversation_id = %s ORDER BY walk.depth DESC"
    )
    return sql, params


def _siblings(condition: str = "", select: str = "COUNT(*)", order: str = "") -> str:
    """A subquery over a path row's siblings (by its parent; at the root, by conversation),
    each form on its own index."""
    return (
        "CASE WHEN m.parent_id IS NULL THEN "
        f"(SELECT {select} FROM {{table}} s WHERE s.conversation_id = m.conversation_id "
        f"AND s.parent_id IS NULL{condition}{order}) "
        f"ELSE (SELECT {select} FROM {{table}} s WHERE s.parent_id = m.parent_id"
        f"{condition}{order}) END"
    )


_BEFORE = " AND (s.created_at < m.created_at OR (s.created_at = m.created_at AND s.id < m.id))"
_AFTER = " AND (s.created_at > m.created_at OR (s.created_at = m.created_at AND s.id > m.id))"
# "2 / 3" and the versions either side, for each message of a path, in its own query.
_VERSION_COLUMNS = ", ".join(
    [
        _siblings() + " AS v_count",
        _siblings(_BEFORE) + " AS v_before",
        _siblings(_BEFORE, "s.id", " ORDER BY s.created_at DESC, s.id DESC LIMIT 1")
        + " AS v_previous",
        _siblings(_AFTER, "s.id", " ORDER BY s.created_at, s.id LIMIT 1") + " AS v_next",
    ]
)


def _versions_of(row: Message) -> Versions | None:
    return _versions(
        getattr(row, "v_count", 0),
        getattr(row, "v_before", 0),
        getattr(row, "v_previous", None),
        getattr(row, "v_next", None),
    )


def _versions(count: Any, before: Any, previous: Any, following: Any) -> Versions | None:
    """ "2 / 3" from the sibling subqueries' columns (ids as the database returns them)."""
    if int(count or 0) < 2:
        return None
    return Versions(
        position=int(before or 0) + 1,
        count=int(count),
        previous_id=uuid.UUID(str(previous)) if previous else None,
        next_id=uuid.UUID(str(following)) if following else None,
    )


def totals(*, conversation_id: uuid.UUID, leaf_id: uuid.UUID) -> tuple[int, int, int]:
    """The characters of text, and the images (count, bytes) of the path that ends at
    `leaf_id`: summed in the database, so that a deep thread's text never crosses into Python
    (S8: a turn in a 3,750-deep conversation with images read 41 ms of path text)."""
    table = _table()
    links = connection.ops.quote_name(MessageAttachment._meta.db_table)
    attachments = connection.ops.quote_name(Attachment._meta.db_table)
    sql = (
        f"WITH RECURSIVE walk(id, depth) AS (SELECT id, 0 FROM {table} WHERE id = %s "
        f"UNION ALL SELECT m.parent_id, w.depth + 1 FROM {table} m JOIN walk w ON m.id = w.id "
        f"WHERE m.parent_id IS NOT NULL AND w.depth + 1 < %s), "
        f"on_path AS (SELECT m.id, LENGTH(m.content) AS chars FROM walk "
        f"JOIN {table} m ON m.id = walk.id WHERE m.conversation_id = %s) "
        f"SELECT (SELECT COALESCE(SUM(chars), 0) FROM on_path), COUNT(a.id), "
        f"COALESCE(SUM(a.byte_size), 0) FROM on_path p JOIN {links} l ON l.message_id = p.id "
        f"JOIN {attachments} a ON a.id = l.attachment_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_db(leaf_id), MAX_DEPTH, _db(conversation_id)])
        chars, count, size = cursor.fetchone()
    return int(chars or 0), int(count or 0), int(size or 0)


def subtree(*, conversation_id: uuid.UUID, root_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The ids and statuses of `root_id` and everything under it."""
    table = _table()
    sql = (
        f"WITH RECURSIVE sub(id) AS (SELECT id FROM {table} WHERE id = %s AND "
        f"conversation_id = %s UNION SELECT m.id FROM {table} m JOIN sub s ON m.parent_id = s.id) "
        f"SELECT m.id, m.status FROM sub JOIN {table} m ON m.id = sub.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_db(root_id), _db(conversation_id)])
        return [(uuid.UUID(str(row[0])), row[1]) for row in cursor.fetchall()]


def newest_leaf(*, conversation_id: uuid.UUID, under_id: uuid.UUID | None) -> uuid.UUID | None:
    """The end of the branch most recently written under `under_id` (itself when nothing is
    under it; None: in the whole conversation). The newest message of a subtree is always one
    of its leaves: a message is always older than what follows it."""
    rows = Message.objects.filter(conversation_id=conversation_id)
    if under_id is None:
        return rows.order_by("-created_at", "-id").values_list("id", flat=True).first()
    table = _table()
    sql = (
        f"WITH RECURSIVE sub(id, created_at) AS (SELECT id, created_at FROM {table} "
        f"WHERE id = %s AND conversation_id = %s UNION ALL "
        f"SELECT m.id, m.created_at FROM {table} m JOIN sub s ON m.parent_id = s.id) "
        "SELECT id FROM sub ORDER BY created_at DESC, id DESC LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_db(under_id), _db(conversation_id)])
        row = cursor.fetchone()
    return uuid.UUID(str(row[0])) if row else None


def with_versions(messages: Iterable[Message]) -> None:
    """Set `versions` on each message (a page's are read with its path instead), in one query
    with the same sibling subqueries as `path(versions=True)`."""
    messages = list(messages)
    if not messages:
        return
    table = _table()
    marks = ", ".join(["%s"] * len(messages))
    sql = f"SELECT m.id, {_VERSION_COLUMNS.format(table=table)} FROM {table} m WHERE m.id IN ({marks})"
    with connection.cursor() as cursor:
        cursor.execute(sql, [_db(message.pk) for message in messages])
        found = {uuid.UUID(str(row[0])): row[1:] for row in cursor.fetchall()}
    for message in messages:
        message.versions = _versions(*found.get(message.pk, (0, 0, None, None)))


def has_images(conversation_id: uuid.UUID) -> bool:
    """Whether any message of the conversation has an image: one indexed statement, on every
    turn's path (a text-only conversation then reads no links at all)."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT 1 FROM {quote(MessageAttachment._meta.db_table)} l "
        f"JOIN {_table()} m ON m.id = l.message_id WHERE m.conversation_id = %s LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_db(conversation_id)])
        return cursor.fetchone() is not None


def role_of(*, conversation_id: uuid.UUID, message_id: uuid.UUID) -> str | None:
    """The role of a message of the conversation, None if it is not one of its messages."""
    sql = f"SELECT role FROM {_table()} WHERE id = %s AND conversation_id = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [_db(message_id), _db(conversation_id)])
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def has_children(message_id: uuid.UUID) -> bool:
    return Message.objects.filter(parent_id=message_id).exists()
