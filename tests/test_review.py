"""The summaries beside each file: text and self-contained HTML, same content, same masking."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import stat
from pathlib import Path

import pytest

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Mandate
from sepa_engine.domain.masking import mask_iban
from sepa_engine.ids import SequentialIds
from sepa_engine.review import LIST_LIMIT, html_path, summary_path
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
HOSTILE = '<script>alert("x")</script> & Co'


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", chunk_size=50)


def collect(db, settings):
    return run_collection(db, settings, FixedClock(NOW), SequentialIds("REV"))


@pytest.fixture
def published(db, settings):
    """A file of 13 debits (12 FRST, one RCUR amendment) and two refusals in the same run."""
    creditor = ledger.creditor(db)
    hostile = ledger.mandate(db, creditor, debtor_name=HOSTILE, iban="FR7630006000011234567890189", reference="RUM-HOSTILE")
    ledger.request(db, creditor, hostile, 99_999)
    for i in range(11):
        ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000 + i)
    old = ledger.mandate(db, creditor, reference="RUM-OLD", first_collected_on=dt.date(2026, 10, 5),
                         last_collected_on=dt.date(2026, 10, 5), status="superseded",
                         presented_creditor_identifier="FR72ZZZ123456")
    with db.reader() as s:
        account = s.get(Mandate, old).debtor_account_id
    new = ledger.mandate(db, creditor, reference="RUM-NEW", iban="DE02120300000000202051", supersedes_id=old,
                         amendment_pending=True, first_collected_on=dt.date(2026, 10, 5),
                         last_collected_on=dt.date(2026, 10, 5), presented_creditor_identifier="FR72ZZZ123456",
                         debtor_account_id=account)
    ledger.request(db, creditor, new, 5_000)
    ledger.request(db, creditor, ledger.mandate(db, creditor, debtor_name="Refused <Debtor>", reference="RUM-<b>"), 0)
    ledger.request(db, creditor, ledger.mandate(db, creditor, status="revoked"), 4_000)
    (outcome,) = collect(db, settings).files
    return outcome


def test_debtor_ibans_are_masked_to_country_check_digits_and_last_four():
    assert mask_iban("FR76 3000 6000 0112 3456 7890 189", fixed_width=True) == "FR76 **** **** 0189"
    assert mask_iban("DE02120300000000202051", fixed_width=True) == "DE02 **** **** 2051"
    assert mask_iban("", fixed_width=True) == ""


def test_summaries_are_written_beside_the_file_owner_only(published):
    for path in (summary_path(published.path), html_path(published.path)):
        assert path.parent == published.path.parent
        assert path.name.startswith(published.message_id)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(published.path.parent.glob(".*.part"))


def test_html_escapes_every_upstream_value(published):
    page = html_path(published.path).read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    assert "RUM-&lt;b&gt;" in page and "<b>" not in page
    assert "Refused &lt;Debtor&gt;" in page


def test_html_page_is_self_contained(published):
    page = html_path(published.path).read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"\b(src|href)\s*=", page, re.I)
    assert "http://" not in page and "https://" not in page and "@import" not in page and "url(" not in page


def test_both_summaries_show_totals_that_equal_the_file(published):
    text = summary_path(published.path).read_text()
    page = html_path(published.path).read_text()
    assert "control sum        1160.54 EUR" in text
    assert "(equals the file's NbOfTxs and CtrlSum)" in text
    assert "These totals equal the file's NbOfTxs and CtrlSum." in page
    rows = [line.split() for line in text.splitlines() if line.startswith("  martin ")]
    assert rows == [
        ["martin", "2026-11-24", "FRST", "12", "1110.54"],
        ["martin", "2026-11-24", "RCUR", "1", "50.00"],
        ["martin", "total", "13", "1160.54"],
    ]


def test_both_summaries_list_the_largest_first_collections_amendments_and_refusals(published):
    text = summary_path(published.path).read_text()
    page = html_path(published.path).read_text()
    for document in (text, page):
        assert "FR76 **** **** 0189" in document and "FR7630006000011234567890189" not in document
        assert "DE02 **** **** 2051" in document and "DE02120300000000202051" not in document
        assert "mandate reference RUM-OLD -&gt; RUM-NEW" in document or "mandate reference RUM-OLD -> RUM-NEW" in document
        assert "new debtor bank (SMNDA)" in document
        assert "AM01" in document and "MD01" in document
    largest = text.split("largest debits (10)\n")[1].split("\n\n")[0].splitlines()
    assert len(largest) == 10 and "999.99" in largest[0]
    assert "first collections (FRST): 12" in text and "  ... and" not in text
    assert "amendments: 1" in text
    assert "refused in this run: 2 (AM01 1, MD01 1)" in text


def test_long_lists_stop_with_and_n_more(db, settings):
    creditor = ledger.creditor(db)
    ledger.many_requests(db, creditor, LIST_LIMIT + 5)
    for _ in range(LIST_LIMIT + 2):
        ledger.request(db, creditor, ledger.mandate(db, creditor), 0)
    (outcome,) = collect(db, settings).files
    text = summary_path(outcome.path).read_text()
    page = html_path(outcome.path).read_text()
    assert "  ... and 5 more" in text and "  ... and 2 more" in text
    assert '<p class="more">and 5 more</p>' in page and '<p class="more">and 2 more</p>' in page
    first = text.split(f"first collections (FRST): {LIST_LIMIT + 5}\n")[1].split("  ... and 5 more")[0]
    assert len(first.splitlines()) == LIST_LIMIT


def test_totals_that_disagree_with_the_file_are_flagged(db, settings, published):
    from sepa_engine.db.models import Batch, Creditor
    from sepa_engine.review import gather, render_text
    from sepa_engine.review_html import render_html

    with db.reader() as s:
        batch = s.get(Batch, published.batch_id)
        review = gather(s, batch, s.get(Creditor, batch.creditor_id), published.path)
    wrong = dataclasses.replace(review, file_sum_cents=review.file_sum_cents + 1)
    assert "DOES NOT MATCH the file's NbOfTxs" in render_text(wrong)
    assert 'class="bad"' in render_html(wrong)


def test_both_summaries_show_the_ultimate_creditor_of_the_block_and_of_debits_naming_their_own(db, settings):
    # Issue 14: the review showed the bank profile but not the UltmtCdtr the file carries, so
    # staff could not see on whose behalf the debits are collected before approving them.
    creditor = ledger.creditor(db, ultimate_creditor_name="Residence <Les Pins>", ultimate_creditor_id="SIRET-111")
    ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 2_000, ultimate_creditor_name="Agence & Fils",
                   ultimate_creditor_id="SIRET-222")
    ledger.request(db, creditor, ledger.mandate(db, creditor), 3_000, ultimate_creditor_name="Agence & Fils",
                   ultimate_creditor_id="SIRET-222")
    (outcome,) = collect(db, settings).files
    assert b"<UltmtCdtr>" in outcome.path.read_bytes()

    text = summary_path(outcome.path).read_text()
    assert "ultimate creditor  Residence <Les Pins>, identifier SIRET-111" in text
    assert "Agence & Fils, identifier SIRET-222: 2 debit(s)" in text
    page = html_path(outcome.path).read_text()
    assert "Residence &lt;Les Pins&gt;" in page and "<Les Pins>" not in page
    assert "SIRET-111" in page
    assert "Agence &amp; Fils" in page and "SIRET-222" in page


def test_both_summaries_show_the_ultimate_debtor_the_debits_carry_from_their_mandates(db, settings):
    # Issue 14: UltmtDbtr comes from the mandate and goes into the file, but the review did not
    # show it, so staff could not see that some debits are paid on someone else's behalf.
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000)
    for cents in (2_000, 3_000):
        mandate = ledger.mandate(db, creditor, ultimate_debtor_name="Parents <Martin>", ultimate_debtor_id="CLIENT-7")
        ledger.request(db, creditor, mandate, cents)
    (outcome,) = collect(db, settings).files
    assert b"<UltmtDbtr>" in outcome.path.read_bytes()

    text = summary_path(outcome.path).read_text()
    assert "ultimate debtor    Parents <Martin>, identifier CLIENT-7: 2 debit(s), from their mandates" in text
    page = html_path(outcome.path).read_text()
    assert "Parents &lt;Martin&gt;, identifier CLIENT-7: 2 debit(s)" in page and "<Martin>" not in page


def test_review_lists_keep_the_largest_and_first_debits_and_count_every_party_group(db, settings):
    """The lists are chosen from the file's debits before their mandates and accounts are
    joined (a 100,000-debit file no longer joins every debit to keep ten): same rows, same
    order, same totals. Ties among the largest go by request id."""
    from sepa_engine.db.models import Batch
    from sepa_engine.db.repositories import review as repo

    creditor = ledger.creditor(db)
    amounts = [500, 9_000, 500, 7_000, 9_000, 100, 500]
    ids = []
    for i, amount in enumerate(amounts):
        mandate = ledger.mandate(db, creditor, ultimate_debtor_name=f"Parent {i % 3}", ultimate_debtor_id=None)
        ids.append(ledger.request(db, creditor, mandate, amount))
    (outcome,) = collect(db, settings).files

    with db.reader() as s:
        batch = s.get(Batch, outcome.batch_id)
        by_id = {r: a for r, a in zip(ids, amounts, strict=True)}
        largest = repo.largest_debits(s, batch.id, 4)
        first, first_total = repo.first_collections(s, batch.id, 3)
        parties, groups = repo.debit_ultimate_debtors(s, batch.id, 2)
        none_named, no_groups = repo.debit_ultimate_creditors(s, batch.id, 2)

    expected = sorted(ids, key=lambda r: (-by_id[r], r))[:4]
    assert [d.amount_cents for d in largest] == [by_id[r] for r in expected] == [9_000, 9_000, 7_000, 500]
    assert [d.end_to_end_id for d in largest][:2] == sorted(d.end_to_end_id for d in largest[:2])
    assert all(d.debtor_name and d.iban and d.mandate_reference for d in largest)
    assert first_total == len(amounts) and len(first) == 3
    assert [d.end_to_end_id for d in first] == sorted(d.end_to_end_id for d in first)
    # Parents 0, 1 and 2 carry 3, 2 and 2 debits: two shown, three groups counted.
    assert groups == 3 and [(p.name, p.count) for p in parties] == [("Parent 0", 3), ("Parent 1", 2)]
    assert (none_named, no_groups) == ([], 0)
