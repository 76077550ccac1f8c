"""Serialising one person's writes that a count must see, inside the current transaction."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection

# A statement of its own (not FOR UPDATE on a counting one): in READ COMMITTED a statement that
# waited for a lock keeps its old snapshot for subqueries, and would count without the write
# that held the lock.
_LOCK_SQL = "SELECT 1 FROM {table} WHERE id = %s FOR UPDATE"


def lock_person(user_id: int) -> None:
    """Hold the person's row until the transaction ends, so that counts of their rows taken
    after it see every write committed before. PostgreSQL only: SQLite's IMMEDIATE
    transactions already hold the database's write lock from BEGIN."""
    assert connection.in_atomic_block, "lock_person holds a lock only inside a transaction"
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL.format(table=get_user_model()._meta.db_table), [user_id])
