"""Set-based writes of many rows for PostgreSQL: one statement over arrays instead of one
statement per row.

``UPDATE ... FROM unnest(arrays)`` and ``INSERT ... SELECT FROM unnest(arrays)`` send a chunk
as one array per column: one statement, one plan, one round trip, where the driver's
executemany sends one statement per row. Measured with EXPLAIN ANALYZE on a 100,000-request
ledger (BENCHMARKS.md, 2026-12-04): the update of 20,000 rows took 2.7 s through unnest and
5.1 s through executemany on the same loaded machine; what remains is PostgreSQL's own work
(a new row version and index entries per updated row), which no statement form avoids.

Each array is cast to its column's type, so NULLs, dates and timestamps arrive typed. SQLite
keeps its executemany (no network round trip per row there): callers choose by
``is_postgresql``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def one_of(session: Session, column: Any, values: Collection[object]) -> ColumnElement[bool]:
    """``column IN values`` for a chunk's thousands of keys.

    PostgreSQL: ``column = ANY(:array)``, one parameter. An expanding IN renders a
    placeholder per value, which SQLAlchemy then formats and psycopg parses again on every
    statement: with 2,000 keys a statement, that was a fifth of a reconciliation's time on
    the client (cProfile, 100,000 returns). SQLite keeps IN, whose plan searches the index
    once per value."""
    ordered = sorted(values)  # type: ignore[type-var]
    if is_postgresql(session):
        return column == any_(bindparam(None, ordered, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(ordered)  # type: ignore[no-any-return]


def _arrays(session: Session, table: Table, names: Sequence[str]) -> str:
    dialect = session.get_bind().dialect
    return ", ".join(f"CAST(:a{i} AS {table.c[name].type.compile(dialect=dialect)}[])" for i, name in enumerate(names))


def _values(session: Session, table: Table, names: Sequence[str], rows: Sequence[dict[str, object]]) -> dict[str, list[object]]:
    # The columns' own bind processing (UTCDateTime refuses a naive datetime) still applies.
    dialect = session.get_bind().dialect
    values: dict[str, list[object]] = {}
    for i, name in enumerate(names):
        process = table.c[name].type.bind_processor(dialect)
        column = [row[name] for row in rows]
        values[f"a{i}"] = [process(v) for v in column] if process is not None else column
    return values


def update_by_id(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[dict[str, object]], *, id_key: str = "id"
) -> None:
    """``UPDATE table SET columns = v.columns FROM unnest(...) v WHERE table.id = v.id``;
    every row carries its id (under ``id_key``) and each of ``columns``."""
    if not rows:
        return
    names = ("id", *columns)
    aliases = ", ".join(f'"{name}"' for name in names)
    assignments = ", ".join(f'"{name}" = v."{name}"' for name in columns)
    values = _values(session, table, columns, rows)
    # Shift the columns' arrays one place: the first array is the ids.
    arrays = {f"a{i + 1}": values[f"a{i}"] for i in range(len(columns))}
    arrays["a0"] = [row[id_key] for row in rows]
    session.execute(
        text(
            f'UPDATE "{table.name}" AS t SET {assignments} '
            f"FROM unnest({_arrays(session, table, names)}) AS v({aliases}) WHERE t.id = v.id"
        ),
        arrays,
    )


def insert(session: Session, table: Table, rows: Sequence[dict[str, object]]) -> None:
    """``INSERT INTO table (columns) SELECT * FROM unnest(...)``; every row has the same keys.

    A column the rows leave out gets its scalar Python default, as the ORM would give it;
    a column with a computed default the rows leave out sends the rows the ordinary way."""
    if not rows:
        return
    given = tuple(rows[0])
    missing = [c for c in table.c if c.default is not None and c.name not in given]
    if any(not c.default.is_scalar for c in missing):  # type: ignore[union-attr]
        session.execute(table.insert(), list(rows))
        return
    names = given + tuple(c.name for c in missing)
    values = _values(session, table, given, rows)
    for offset, column in enumerate(missing, start=len(given)):
        values[f"a{offset}"] = [column.default.arg] * len(rows)  # type: ignore[union-attr]
    columns = ", ".join(f'"{name}"' for name in names)
    session.execute(
        text(f'INSERT INTO "{table.name}" ({columns}) SELECT * FROM unnest({_arrays(session, table, names)})'),
        values,
    )
