"""A chunk's keys (``bulk.one_of``) reach the planner as one constant array, so it can search
an index per key or hash them.

Regression: sent as the text of an array literal cast to the column's array type, the keys
were an expression the planner does not fold (array_in is only stable): no constant, no
hashed ANY, and the pending requests and applied keys of each chunk were read by testing
every row against 2,000 keys. 100,000 returns into 1,000,000 debits took 130 s on
PostgreSQL, 35 s with the keys sent as a list."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from sepa_engine.db import bulk
from sepa_engine.db.returns_models import AppliedReturn, ReturnFile
from tests.db.plans import plans_of


def test_a_chunks_keys_reach_the_planner_as_one_constant_array(db):
    keys = [f"camt:{n}" for n in range(2_000)]
    with db.transaction() as s, plans_of(s, "natural_key", sqlite=db.is_sqlite) as plans:
        found = s.scalars(select(AppliedReturn.natural_key).where(bulk.one_of(s, AppliedReturn.natural_key, keys))).all()

    assert found == []
    (plan,) = plans
    if db.is_sqlite:
        assert "natural_key=?" in plan, plan
    else:
        # The 2,000 keys as one constant array; the cast chain of the text form
        # ('{...}'::cstring)::text[])::character varying(120)[]) ran per plan, unfolded.
        assert "ANY ('{" in plan and "cstring" not in plan, plan[:300]


def test_a_chunks_keys_find_the_rows_they_name_text_and_integer_keys_alike(db):
    # Regression: the keys' text, given the column's array type, went through that type's
    # processing, which split the string into its characters: every lookup found nothing
    # (the test above, which looks up keys no row holds, could not tell).
    at = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    with db.transaction() as s:
        for digest in ("a" * 64, 'quote"and\\backslash' + "b" * 44, "non-ASCII: échéance " + "c" * 44):
            s.add(ReturnFile(sha256=digest, path="x.xml", status="applied", records=0, applied=0, already_applied=0,
                             exceptions=0, skipped=0, imported_at=at))
        s.flush()
        ids = list(s.scalars(select(ReturnFile.id)))
        keys = [f"{n:064d}" for n in range(2_000)] + ["a" * 64, 'quote"and\\backslash' + "b" * 44, "non-ASCII: échéance " + "c" * 44]
        found = s.scalars(select(ReturnFile.sha256).where(bulk.one_of(s, ReturnFile.sha256, keys))).all()
        by_id = s.scalars(select(ReturnFile.id).where(bulk.one_of(s, ReturnFile.id, [*ids, *range(10_000, 12_000)]))).all()
    assert sorted(found) == sorted(["a" * 64, 'quote"and\\backslash' + "b" * 44, "non-ASCII: échéance " + "c" * 44])
    assert sorted(by_id) == sorted(ids)
