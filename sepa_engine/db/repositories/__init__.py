"""All queries live here; services call these and never build SQL themselves."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table


def table_of(model: type[Any]) -> Table:
    """A mapped class's Table (SQLAlchemy types ``__table__`` as any FromClause)."""
    return cast(Table, model.__table__)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched: executing one returns a CursorResult."""
    return cast(CursorResult[Any], result).rowcount
