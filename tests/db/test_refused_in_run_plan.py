"""What a run refused is read from the refused requests' own index (migration 0011), not by
testing the status of every request of the run.

Regression: every file's review summary lists, counts and groups by reason the requests its
run refused for its creditor. Those queries searched the run's index by run and creditor,
then read each of the run's requests to test its status: a 1,000,000-request run in ten
files read a million rows three times per file, 30 s of the run at load 5."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from sepa_engine.db.repositories import collection as collection_repo
from sepa_engine.db.repositories import review as review_repo
from tests.db.plans import plans_of

INDEX = "ix_debit_requests_refused"

READS: dict[str, Callable] = {
    "the summary's refused list and count": lambda s: review_repo.refused_for_creditor_in_run(s, 7, 1, 50),
    "the summary's reason codes": lambda s: review_repo.refused_reasons(s, 7, 1),
    "the batch's refused requests": lambda s: collection_repo.refused_of_creditor_in_run(s, 7, 1),
    "the run report's refusals": lambda s: collection_repo.refused_in_run(s, 7, 20),
    "the run report's count": lambda s: collection_repo.count_refused_in_run(s, 7),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_runs_refusals_are_read_from_the_refused_index(db, read):
    with db.transaction() as s:
        if not db.is_sqlite:
            # Empty tables: without this PostgreSQL would rightly scan them whole. With it,
            # the choice is between indexes, which is what this test is about.
            s.execute(text("SET LOCAL enable_seqscan = off"))
        with plans_of(s, "debit_requests", sqlite=db.is_sqlite) as plans:
            read(s)

    assert plans
    for plan in plans:
        assert INDEX in plan, plan
