"""A file's entries are read one query per block, a chunk at a time, never page by page.

Regression: the stager read each block in keyset pages (``block_id = ? AND id > ? ORDER BY id
LIMIT n``). The block's rows are written by the run itself, after the statistics said that
no request had a block, so PostgreSQL planned every page as a scan of the rest of the block
and a sort: reads quadratic in the block's size (100,000 requests in two blocks, pages of
5,000: 20 reads of 60 to 170 ms, against 170 ms for a block read once).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lxml import etree
from sqlalchemy import event, select

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


def test_a_files_entries_are_read_once_per_block_in_file_order(db, tmp_path: Path, database_url):
    creditor = ledger.creditor(db)
    for first in (True, False):  # FRST and RCUR: two blocks
        for _ in range(10):
            mandate = ledger.mandate(
                db, creditor, **({} if first else {"first_collected_on": dt.date(2025, 2, 5), "last_collected_on": dt.date(2026, 10, 5)}),
            )
            ledger.request(db, creditor, mandate)
    # Chunks far smaller than a block: the old pages would have been four per block.
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", chunk_size=3)
    reads: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "debit_requests.block_id = " in statement and "JOIN mandates" in statement:
            reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)

    [outcome] = report.files
    assert [block[1:3] for block in outcome.blocks] == [("FRST", 10), ("RCUR", 10)]
    assert len(reads) == 2
    with db.reader() as s:
        expected = [e2e for e2e, in s.execute(
            select(DebitRequest.end_to_end_id).order_by(DebitRequest.sequence_type, DebitRequest.id)
        )]
    ns = {"p": etree.parse(str(outcome.path)).getroot().nsmap[None]}
    written = etree.parse(str(outcome.path)).xpath("//p:DrctDbtTxInf/p:PmtId/p:EndToEndId/text()", namespaces=ns)
    assert written == expected
