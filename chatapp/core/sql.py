"""Prepared statements for the few queries on every turn's path (docs/ARCHITECTURE.md, "The
cost of a turn").

The ORM compiles each query anew every time it runs: resolving lookups, quoting names,
ordering, choosing converters. For a one-row lookup that is most of the cost: measured on
SQLite, `User.objects.get(pk=...)` 420 µs against 52 µs for the same SELECT by hand, and a
conversation's `select_for_update().filter(pk=...).first()` 986 µs. A `Prepared` statement is
written once per model from its fields (so a new column is never forgotten), and each run
only prepares the parameters, executes, converts the columns as the ORM would (the same
backend and field converters) and builds the instances with `Model.from_db`. `insert` writes
new instances the same way.

Only for statements that name rows by key: anything with joins or conditions worth reading
stays a queryset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, CharField, Field, Model, TextField

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


def _quote(name: str | None, conn: BaseDatabaseWrapper) -> str:
    assert name is not None
    return conn.ops.quote_name(name)


def field_of(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    assert isinstance(field, Field), f"{name} is not a column of {model.__name__}"
    return field


def _connection() -> BaseDatabaseWrapper:
    # `django.db.connection` is a proxy that looks the connection up (an asgiref Local) on
    # every attribute: ~12% of a send's CPU when each column and parameter went through it.
    return connections[DEFAULT_DB_ALIAS]


class Prepared(Generic[M]):
    """`SELECT <every concrete field of model> FROM <its table> WHERE <field> = %s ...`.

    `where` names the fields compared for equality, in the order of the parameters;
    `for_update` locks the rows on PostgreSQL (SQLite's IMMEDIATE transactions already hold
    the write lock). Built lazily, per database vendor, on first use."""

    def __init__(self, model: type[M], *where: str, for_update: bool = False) -> None:
        self.model = model
        self.where = where
        self.for_update = for_update
        self._keys = [field_of(model, name) for name in where]
        self._built: dict[str, tuple[str, list[str], list[tuple[Any, list[Converter]]]]] = {}

    def _build(
        self, conn: BaseDatabaseWrapper
    ) -> tuple[str, list[str], list[tuple[Any, list[Converter]]]]:
        built = self._built.get(conn.vendor)
        if built is not None:
            return built
        meta = self.model._meta
        fields: list[Field[Any, Any]] = list(meta.concrete_fields)
        sql = "SELECT {} FROM {} WHERE {}".format(
            ", ".join(_quote(f.column, conn) for f in fields),
            _quote(meta.db_table, conn),
            " AND ".join(f"{_quote(k.column, conn)} = %s" for k in self._keys),
        )
        if self.for_update and conn.features.has_select_for_update:
            sql += " FOR UPDATE"
        converters = []
        for field in fields:
            column = field.get_col(meta.db_table)
            steps = [*conn.ops.get_db_converters(column), *column.get_db_converters(conn)]
            converters.append((column, steps))
        built = (sql, [f.attname for f in fields], converters)
        self._built[conn.vendor] = built
        return built

    def all(self, *values: Any) -> list[M]:
        conn = _connection()
        sql, names, converters = self._build(conn)
        params = [
            key.get_db_prep_value(value, conn)
            for key, value in zip(self._keys, values, strict=True)
        ]
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        found = []
        for row in rows:
            converted = []
            for value, (column, steps) in zip(row, converters, strict=True):
                for step in steps:
                    value = step(value, column, conn)
                converted.append(value)
            found.append(self.model.from_db(conn.alias, names, converted))
        return found

    def first(self, *values: Any) -> M | None:
        """The row (by a unique key), or None."""
        rows = self.all(*values)
        return rows[0] if rows else None


_INSERTS: dict[tuple[type[Model], str, int], str] = {}
# An UPDATE's statement and fields, by its model, backend and the fields it sets: written once
# (the final save's was ~100 calls a turn, quoting and looking up its fields anew).
_Built: TypeAlias = "tuple[str, list[Field[Any, Any]], Field[Any, Any]]"
_UPDATES: dict[tuple[type[Model], str, tuple[str, ...]], _Built] = {}
_ACTIVE_UPDATES: dict[tuple[type[Model], str, tuple[str, ...], int], _Built] = {}

# Fields whose value, when it is already the column's Python type (or None), is the parameter
# itself on every backend: Django's `get_db_prep_save` chain (`get_db_prep_value`,
# `get_prep_value`, `to_python`) hands it back unchanged, at four calls a field. A turn's
# inserts and final UPDATE pass ~100 fields, ~40 of them these; the exact classes only, so a
# subclass that prepares its values is never skipped. Not integers: on PostgreSQL they are
# wrapped for binding (`adapt_integerfield_value`). With the cached UPDATEs above, a turn's
# Python calls 6,106 -> 5,888 (counted over 100 turns); its CPU moved less than `bench.ab`
# can tell (B/A 0.998 median over 80 rounds).
_AS_IS: dict[type[Field[Any, Any]], type] = {CharField: str, TextField: str, BooleanField: bool}


def _save_value(field: Field[Any, Any], value: Any, conn: BaseDatabaseWrapper) -> Any:
    """`field.get_db_prep_save(value, conn)`, without its calls where they change nothing."""
    kind = _AS_IS.get(type(field))
    if kind is not None and (value is None or type(value) is kind):
        return value
    return field.get_db_prep_save(value, conn)


def _saved(field: Field[Any, Any], instance: Model, add: bool, conn: BaseDatabaseWrapper) -> Any:
    """`field.get_db_prep_save(field.pre_save(instance, add), conn)`, as `_save_value`; these
    kinds' `pre_save` is `Field`'s, which reads the attribute."""
    if type(field) in _AS_IS:
        return _save_value(field, getattr(instance, field.attname), conn)
    return field.get_db_prep_save(field.pre_save(instance, add), conn)


def insert(instances: Sequence[Model]) -> None:
    """INSERT new instances of one model in one statement, every concrete field as the ORM
    would save it (`pre_save`, then `get_db_prep_save`). Primary keys must be set (UUIDs made
    here); the instances are marked saved."""
    if not instances:
        return
    conn = _connection()
    model = type(instances[0])
    meta = model._meta
    fields = list(meta.concrete_fields)
    key = (model, conn.vendor, len(instances))
    sql = _INSERTS.get(key)
    if sql is None:
        row = "({})".format(", ".join(["%s"] * len(fields)))
        sql = _INSERTS[key] = "INSERT INTO {} ({}) VALUES {}".format(
            _quote(meta.db_table, conn),
            ", ".join(_quote(f.column, conn) for f in fields),
            ", ".join([row] * len(instances)),
        )
    params: list[Any] = []
    for instance in instances:
        assert instance.pk is not None, "insert() needs primary keys set"
        for field in fields:
            params.append(_saved(field, instance, True, conn))
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
    for instance in instances:
        instance._state.adding = False
        instance._state.db = conn.alias


def update(instance: Model, *names: str) -> None:
    """UPDATE the named fields of a saved instance by its primary key, as `save(update_fields=
    names)` would write them."""
    conn = _connection()
    model = type(instance)
    key = (model, conn.vendor, names)
    built = _UPDATES.get(key)
    if built is None:
        fields = [field_of(model, name) for name in names]
        pk = field_of(model, "pk")
        sql = "UPDATE {} SET {} WHERE {} = %s".format(
            _quote(model._meta.db_table, conn),
            ", ".join(f"{_quote(f.column, conn)} = %s" for f in fields),
            _quote(pk.column, conn),
        )
        built = _UPDATES[key] = (sql, fields, pk)
    sql, fields, pk = built
    params = [_saved(f, instance, False, conn) for f in fields]
    params.append(pk.get_db_prep_value(instance.pk, conn))
    with conn.cursor() as cursor:
        cursor.execute(sql, params)


def update_where_active(
    model: type[Model], pk: Any, values: dict[str, Any], *, status_in: Sequence[str]
) -> int:
    """UPDATE the fields `values` names of the row `pk` if its `status` is one of
    `status_in`; the number of rows changed (0 or 1)."""
    conn = _connection()
    shape = (model, conn.vendor, tuple(values), len(status_in))
    built = _ACTIVE_UPDATES.get(shape)
    if built is None:
        fields = [field_of(model, name) for name in values]
        key = field_of(model, "pk")
        status = field_of(model, "status")
        sql = "UPDATE {} SET {} WHERE {} = %s AND {} IN ({})".format(
            _quote(model._meta.db_table, conn),
            ", ".join(f"{_quote(f.column, conn)} = %s" for f in fields),
            _quote(key.column, conn),
            _quote(status.column, conn),
            ", ".join(["%s"] * len(status_in)),
        )
        built = _ACTIVE_UPDATES[shape] = (sql, fields, key)
    sql, fields, key = built
    params = [_save_value(f, v, conn) for f, v in zip(fields, values.values(), strict=True)]
    params.append(key.get_db_prep_value(pk, conn))
    params.extend(status_in)
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
