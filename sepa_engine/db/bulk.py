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

An array goes as the text of an array literal (``{"a","b\\"c",NULL}``), written here, read as
``text[]`` and cast to the column's type, not as a Python list: psycopg dumps a list element
by element in Python, with a regular expression per string to decide its quoting, which was
15 % of a 100,000-return reconciliation under cProfile. Every string is quoted, with only
``"`` and ``\\`` escaped, which is all the quoted form needs; the cast from ``text[]`` is the
one a list of strings took before. A column whose values are of a type not written here
(or a timestamp without offset) still goes as a list.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import UserDefinedType


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def one_of(session: Session, column: Any, values: Collection[object]) -> ColumnElement[bool]:
    """``column IN values`` for a chunk's thousands of keys.

    PostgreSQL: ``column = ANY(:array)``, one parameter. An expanding IN renders a
    placeholder per value, which SQLAlchemy then formats and psycopg parses again on every
    statement: with 2,000 keys a statement, that was a fifth of a reconciliation's time on
    the client (cProfile, 100,000 returns). SQLite: ``column IN (SELECT value FROM
    json_each(:json))``, one parameter too, for the same reason (SQLAlchemy rendered 2,000
    placeholders per statement there as well); the plan still searches the column's index
    once per value (tests/db/test_key_lookup_plan.py). Keys of other types than int and
    str keep the expanding IN."""
    ordered = sorted(values)  # type: ignore[type-var]
    if is_postgresql(session):
        # The array literal's text as the parameter itself, cast once to the column's array
        # type: psycopg sends a str untyped, so the server gives the parameter that type and
        # reads the text when binding it, and the planner sees one constant array (hashed
        # ANY, an estimate). Cast from ``text`` instead (``CAST(CAST(:p AS TEXT) AS
        # TEXT[])``) it is a conversion the planner does not fold (array_in is only stable):
        # 100,000 returns into 1,000,000 debits took 130 s, each chunk's pending requests
        # and applied keys read by testing every row against 2,000 keys
        # (tests/db/test_key_lookup_plan.py). A list would do too, but psycopg dumps it
        # element by element in Python. (A type that processes its values keeps the list.)
        dialect = session.get_bind().dialect
        literal = array_literal(ordered) if column.type.bind_processor(dialect) is None else None
        if literal is None:
            return column == any_(bindparam(None, ordered, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
        return column == any_(cast_(bindparam(None, literal, type_=_Untyped()), ARRAY(column.type)))  # type: ignore[no-any-return]
    if all(type(value) is int or type(value) is str for value in ordered):
        # json.dumps writes ints and strs as JSON reads them back (non-ASCII escaped).
        keys = func.json_each(bindparam(None, json.dumps(ordered), type_=Text()))
        return column.in_(select(literal_column("value")).select_from(keys).scalar_subquery())  # type: ignore[no-any-return]
    return column.in_(ordered)  # type: ignore[no-any-return]


class _Untyped(UserDefinedType[str]):
    """A parameter sent as it is, with no cast of its own and no processing (an array
    type's would split a string into characters): psycopg sends a str untyped, and the
    server types it from the cast around it."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "TEXT"

    def bind_processor(self, dialect: Any) -> None:
        return None


def unnested(column: Any, values: Collection[object]) -> Any:
    """PostgreSQL: ``unnest(:array) AS wanted(value)``, ``values`` typed as ``column``, one
    parameter (as the bulk writes send them: unnest reads it once), to be joined on."""
    return func.unnest(_array(column, sorted(values))).table_valued("value").render_derived(name="wanted")  # type: ignore[type-var]


def _array(column: Any, values: Sequence[object]) -> Any:
    """``values`` as one array parameter typed as ``column`` (``unnested``)."""
    literal = array_literal(values)
    if literal is None:
        return bindparam(None, list(values), type_=ARRAY(column.type))
    return cast_(cast_(bindparam(None, literal, type_=Text()), ARRAY(Text())), ARRAY(column.type))


def each_key(
    session: Session, query: Select[*tuple[Any, ...]], key: Any, keys: Collection[object], *, entity: type | None = None
) -> Select[*tuple[Any, ...]]:
    """``query`` narrowed to the rows whose ``key`` is one of ``keys``, for a key unique
    among the rows ``query`` reads (a creditor's idempotency keys, invoice numbers).

    PostgreSQL: one index search per key, whatever the statistics say. With ``key =
    ANY(:keys)`` the planner may search the unique index by its leading columns alone and
    test each row against the keys: on statistics taken while the table was small (a new
    ledger filling, or one after a large load) every chunk of an HTTP enqueue read all the
    creditor's requests and invoices (``auto_explain``, BENCHMARKS.md "Keyed lookups").
    A LATERAL subquery with a LIMIT cannot be flattened, so each key is a parameter of its
    own index search. ``entity``: rows come back as that mapped class (``query`` selects
    it). SQLite (no statistics) keeps ``bulk.one_of``."""
    if not is_postgresql(session):
        return query.where(one_of(session, key, keys))
    wanted = unnested(key, keys)
    found = query.where(key == wanted.c.value).limit(1).lateral("found")
    target: Any = aliased(entity, found) if entity is not None else found
    return select(target).select_from(wanted).join(found, true())


def each_owned_key(
    session: Session, query: Select[*tuple[Any, ...]], owner: Any, key: Any, keys: Mapping[Any, Collection[object]],
    *, entity: type | None = None,
) -> Select[*tuple[Any, ...]]:
    """``each_key`` for several owners' keys at once, each key unique within its owner (the
    HTTP batcher's group holds several creditors' idempotency keys and invoice numbers):
    ``query`` narrowed to the rows whose (``owner``, ``key``) is one of the pairs in
    ``keys`` (owner -> its keys).

    PostgreSQL: one index search per pair, as ``each_key`` (the two arrays unnested side by
    side, a LATERAL search per pair). SQLite: one ``owner = ? AND key IN (...)`` per owner,
    ORed, each term searched on the index (tests/db/test_keyed_lookup_plans.py)."""
    pairs = sorted((o, k) for o, values in keys.items() for k in values)
    if not pairs:
        return query.where(false())
    if not is_postgresql(session):
        owned: dict[Any, list[object]] = {}
        for o, k in pairs:
            owned.setdefault(o, []).append(k)
        return query.where(or_(*(and_(owner == o, one_of(session, key, values)) for o, values in owned.items())))
    wanted = func.unnest(
        _array(owner, [o for o, _ in pairs]), _array(key, [k for _, k in pairs])
    ).table_valued("owner", "value").render_derived(name="wanted")
    found = query.where(owner == wanted.c.owner, key == wanted.c.value).limit(1).lateral("found")
    target: Any = aliased(entity, found) if entity is not None else found
    return select(target).select_from(wanted).join(found, true())


def _arrays(session: Session, table: Table, names: Sequence[str], values: dict[str, object]) -> str:
    dialect = session.get_bind().dialect
    return ", ".join(
        f"CAST(CAST(:a{i} AS TEXT[]) AS {table.c[name].type.compile(dialect=dialect)}[])"
        if isinstance(values[f"a{i}"], str) else
        f"CAST(:a{i} AS {table.c[name].type.compile(dialect=dialect)}[])"
        for i, name in enumerate(names)
    )


def _values(session: Session, table: Table, names: Sequence[str], rows: Sequence[dict[str, object]]) -> dict[str, object]:
    """Each column's values as an array literal's text (``array_literal``), or as a list
    when they are of a type it does not write."""
    # The columns' own bind processing (UTCDateTime refuses a naive datetime) still applies.
    dialect = session.get_bind().dialect
    values: dict[str, object] = {}
    for i, name in enumerate(names):
        process = table.c[name].type.bind_processor(dialect)
        column = [row[name] for row in rows]
        if process is not None:
            column = [process(v) for v in column]
        literal = array_literal(column)
        values[f"a{i}"] = column if literal is None else literal
    return values


def array_literal(values: Sequence[object]) -> str | None:
    """The text of a PostgreSQL array of ``values`` (read as ``text[]``), or None when a
    value is of a type this does not write: strings, integers, booleans, Decimals, dates
    and timestamps with an offset. NULL for None; every other element quoted."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds <= _WRITTEN:
        return None
    if kinds <= {dt.date, dt.datetime}:
        # A chunk's dates and instants are few (one instant per segment): each written once.
        # Equal instants in other offsets share one text, which is the same instant.
        days = cast("Sequence[dt.date | None]", values)
        distinct = set(days)
        distinct.discard(None)
        if any(isinstance(v, dt.datetime) and v.utcoffset() is None for v in distinct):
            return None  # a naive timestamp's meaning depends on the column's type: psycopg decides
        written = {v: '"' + v.isoformat() + '"' for v in distinct if v is not None}
        return "{" + ",".join(["NULL" if v is None else written[v] for v in days]) + "}"
    if dt.datetime in kinds:
        return None  # a timestamp among other types: psycopg decides
    if kinds <= {int, Decimal}:
        return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"
    if kinds <= {str}:
        texts = cast("Sequence[str | None]", values)
        return "{" + ",".join([
            "NULL" if v is None else '"' + (v.replace("\\", "\\\\").replace('"', '\\"') if '"' in v or "\\" in v else v) + '"'
            for v in texts
        ]) + "}"
    return "{" + ",".join(["NULL" if v is None else _element(v) for v in values]) + "}"


_WRITTEN = frozenset({str, int, bool, Decimal, dt.date, dt.datetime})


def _element(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dt.date):
        return '"' + value.isoformat() + '"'
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


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
    ids = [row[id_key] for row in rows]
    arrays["a0"] = array_literal(ids) or ids
    session.execute(
        text(
            f'UPDATE "{table.name}" AS t SET {assignments} '
            f"FROM unnest({_arrays(session, table, names, arrays)}) AS v({aliases}) WHERE t.id = v.id"
        ),
        arrays,
    )


# From this many rows, ``insert_many`` sends one ``INSERT ... SELECT FROM unnest``; below it,
# psycopg's pipelined executemany. Per request row on PostgreSQL, 8,000 rows in chunks of each
# size (BENCHMARKS.md, "Enqueue's inserts by chunk size"): at 8 rows both take 160-220 us,
# at 16 rows 120-150 us against 180-250, at 1,000 rows 48-50 us against 131-174. The HTTP
# API's enqueues come in groups of about eight, where building the arrays cost more server
# CPU per request than the pipelined statements (BENCHMARKS.md, "The newest invoice from
# sums, and keyed lookups").
UNNEST_FROM = 16


def insert_many(session: Session, table: Table, rows: Sequence[dict[str, object]]) -> None:
    """Insert ``rows`` (every row with the same keys) the cheaper way for their number:
    ``insert`` on PostgreSQL from ``UNNEST_FROM`` rows, else one Core executemany."""
    if not rows:
        return
    if len(rows) >= UNNEST_FROM and is_postgresql(session):
        insert(session, table, rows)
        return
    session.execute(table.insert(), list(rows))


def insert(
    session: Session, table: Table, rows: Sequence[dict[str, object]], returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """``INSERT INTO table (columns) SELECT * FROM unnest(...)``; every row has the same keys.
    With ``returning``, those columns of the rows inserted (in no particular order).

    A column the rows leave out gets its scalar Python default, as the ORM would give it;
    a column with a computed default the rows leave out sends the rows the ordinary way."""
    if not rows:
        return []
    given = tuple(rows[0])
    missing = [c for c in table.c if c.default is not None and c.name not in given]
    if any(not c.default.is_scalar for c in missing):  # type: ignore[union-attr]
        statement = table.insert().returning(*(table.c[name] for name in returning)) if returning else table.insert()
        result = session.execute(statement, list(rows))
        return [tuple(row) for row in result] if returning else []
    names = given + tuple(c.name for c in missing)
    values = _values(session, table, given, rows)
    for offset, column in enumerate(missing, start=len(given)):
        defaults = [column.default.arg] * len(rows)  # type: ignore[union-attr]
        values[f"a{offset}"] = array_literal(defaults) or defaults
    columns = ", ".join(f'"{name}"' for name in names)
    back = " RETURNING " + ", ".join(f'"{name}"' for name in returning) if returning else ""
    result = session.execute(
        text(f'INSERT INTO "{table.name}" ({columns}) SELECT * FROM unnest({_arrays(session, table, names, values)}){back}'),
        values,
    )
    return [tuple(row) for row in result] if returning else []
