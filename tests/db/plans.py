"""The plans of the statements a block of code runs, as the database would execute them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session


@contextmanager
def plans_of(session: Session, mentioning: str, *, sqlite: bool) -> Iterator[list[str]]:
    """Collect, for each statement the session runs whose text mentions ``mentioning``, its
    plan with the same parameters (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL), one
    text per statement, each plan line's last column on a line of its own."""
    plans: list[str] = []
    connection = session.connection()

    def explain(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if mentioning in statement and not statement.startswith("EXPLAIN"):
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            raw = cursor.connection if sqlite else cursor.connection.cursor()
            rows = raw.execute(prefix + statement, parameters).fetchall()
            plans.append("\n".join(str(row[-1]) for row in rows))

    event.listen(connection, "before_cursor_execute", explain)
    try:
        yield plans
    finally:
        event.remove(connection, "before_cursor_execute", explain)
