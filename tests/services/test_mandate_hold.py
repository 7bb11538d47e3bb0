"""MD06 (the debtor's refund of an authorised collection) holds the mandate: it stays valid,
its pending requests wait, pending, until a person releases it; then they are collected."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sepa_engine import errors
from sepa_engine.banksim import simulate
from sepa_engine.cli.main import app
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest, Mandate
from sepa_engine.db.returns_models import AppliedReturn
from sepa_engine.exit_codes import ExitCode
from sepa_engine.ids import SequentialIds
from sepa_engine.services import registry
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.cli.test_ledger_cli import _config
from tests.services.test_reconciliation import collect, reconcile

NEXT_RUN = FixedClock(dt.datetime(2026, 12, 8, 8, 0, tzinfo=dt.UTC))


def _refunded(db, settings, tmp_path):
    """Collect 20 debits, have the bank return them all, and a debit wait on every mandate."""
    sim = simulate(collect(db, settings), tmp_path / "inbox", 0.0, 1.0, seed=3)
    md06 = {r.end_to_end_id for r in sim.returned if r.reason_code == "MD06"}
    others = {r.end_to_end_id for r in sim.returned if r.reason_code in ("AM04", "MS03")}
    assert md06 and others, "the seed must give refunds and soft returns"
    for path in sim.paths:
        reconcile(db, path)
    with db.reader() as s:
        debits = {r.end_to_end_id: r for r in s.scalars(select(DebitRequest))}
    waiting = {}
    for e2e in md06 | others:
        debit = debits[e2e]
        waiting[e2e] = ledger.request(
            db, debit.creditor_id, debit.mandate_id, 4_200, requested_date=dt.date(2026, 12, 9)
        )
    return debits, md06, others, waiting


def test_a_refund_holds_the_mandate_and_its_pending_requests_wait_uncollected(db, settings, tmp_path):
    debits, md06, others, waiting = _refunded(db, settings, tmp_path)

    with db.reader() as s:
        for e2e in md06:
            mandate = s.get(Mandate, debits[e2e].mandate_id)
            assert (mandate.status, mandate.status_reason) == ("held", "MD06")
            applied = s.scalars(select(AppliedReturn).where(AppliedReturn.end_to_end_id == e2e)).all()
            assert any("mandate held" in (a.effects or "") for a in applied)

    run_collection(db, settings, NEXT_RUN, SequentialIds("HOLD"))

    with db.reader() as s:
        for e2e in md06:
            assert s.get(DebitRequest, waiting[e2e]).status == "pending"  # not refused: waiting
        for e2e in others:
            assert s.get(DebitRequest, waiting[e2e]).status == "submitted"


def test_a_released_mandate_is_collected_again_at_the_next_run(db, settings, tmp_path):
    debits, md06, _others, waiting = _refunded(db, settings, tmp_path)
    e2e = sorted(md06)[0]
    with db.reader() as s:
        reference = s.get(Mandate, debits[e2e].mandate_id).reference

    with db.transaction() as s:
        assert registry.release_mandate(s, "martin", reference, note="debtor called, agreed", clock=NEXT_RUN)
    with db.transaction() as s:
        assert not registry.release_mandate(s, "martin", reference, note="twice", clock=NEXT_RUN)
    run_collection(db, settings, NEXT_RUN, SequentialIds("REL"))

    with db.reader() as s:
        mandate = s.get(Mandate, debits[e2e].mandate_id)
        assert (mandate.status, mandate.status_reason) == ("active", "released: debtor called, agreed")
        assert s.get(DebitRequest, waiting[e2e]).status == "submitted"
        still_held = [s.get(DebitRequest, waiting[other]).status for other in md06 - {e2e}]
    assert still_held == ["pending"] * (len(md06) - 1)


def test_only_a_held_mandate_is_released(db, settings):
    creditor = ledger.creditor(db)
    blocked = ledger.mandate(db, creditor, status="blocked", status_reason="AC04")
    with db.reader() as s:
        reference = s.get(Mandate, blocked).reference
    with pytest.raises(errors.MandateNotActive, match="is blocked, not held"), db.transaction() as s:
        registry.release_mandate(s, "martin", reference, note="", clock=NEXT_RUN)


def test_mandates_release_command_releases_and_says_so(db, settings, tmp_path):
    creditor = ledger.creditor(db)
    held = ledger.mandate(db, creditor, status="held", status_reason="MD06")
    with db.reader() as s:
        reference = s.get(Mandate, held).reference
    config = _config(tmp_path, settings.database_url)

    result = CliRunner().invoke(
        app, ["mandates", "release", reference, "--creditor", "martin", "--note", "ok", "--config",
              str(config), "--json"],
    )

    assert result.exit_code == 0, result.output
    assert '"released": true' in result.output
    with db.reader() as s:
        assert s.get(Mandate, held).status == "active"


def test_mandates_release_of_a_mandate_not_held_is_a_refusal(db, settings, tmp_path):
    creditor = ledger.creditor(db)
    blocked = ledger.mandate(db, creditor, status="blocked", status_reason="AC04")
    with db.reader() as s:
        reference = s.get(Mandate, blocked).reference

    result = CliRunner().invoke(
        app, ["mandates", "release", reference, "--creditor", "martin", "--config", _config(tmp_path, settings.database_url)],
    )

    assert result.exit_code == ExitCode.INVALID, result.output
    assert "not held" in result.output
