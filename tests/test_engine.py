"""The public Python API: the README's example runs as written, and the facade is what it
says it is (a transaction per call, the services' errors, the CLI on top of it)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
from pathlib import Path

import pytest
import structlog.testing
from freezegun import freeze_time
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from sepa_engine import engine as engine_module
from sepa_engine import errors
from sepa_engine.config import Settings, load_settings
from sepa_engine.db import locks
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.returns_models import ReturnFile
from sepa_engine.engine import (
    CreditorSettingsInput,
    DebitRequestInput,
    DetailsInput,
    DisputedInvoice,
    DisputeInput,
    DisputeTransitionInput,
    Engine,
    EnqueueItem,
    GroupPaymentInput,
    GroupSelection,
    LedgerEntryInput,
    ModeChangeInput,
)
from tests import accounts_world as world
from tests.concurrency import in_thread, the_other_side_of_a_cycle
from tests.jobs.test_returns_inbox import a_reject_that_locks_a_mandate_then_its_account
from tests.services.test_reconciliation import LATER

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> str:
    text = README.read_text("utf-8")
    section = text[text.index("## Python API\n") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "the README's Python API section has no example"
    return found.group(1)


def _config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n'
        f'outbox_dir = "{tmp_path / "outbox"}"\n'
    )
    return path


@freeze_time("2026-11-20 09:00:00")
def test_the_readme_example_registers_enqueues_collects_and_reads(tmp_path, monkeypatch, database_url):
    _config(tmp_path, database_url)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_readme_example(), "README.md", "exec"), {})
    (line,) = out.getvalue().splitlines()
    end_to_end_id, cents, status = line.split()
    assert (cents, status) == ("85000", "submitted")
    assert [p.name for p in (tmp_path / "outbox").rglob("*.xml")]  # the file was written
    # Run again: every call replays its idempotency key, nothing new is written.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_readme_example(), "README.md", "exec"), {})
    assert out.getvalue().split() == [end_to_end_id, "85000", "submitted"]


def test_everything_the_module_exports_exists_and_is_documented():
    for name in engine_module.__all__:
        assert hasattr(engine_module, name), name
    public = [name for name in vars(Engine) if not name.startswith("_")]
    assert {"register_creditor", "enqueue", "enqueue_many", "pay_now", "collect", "reconcile", "statement"} <= set(public)
    for name in public:
        attribute = getattr(Engine, name)
        if callable(attribute) and name not in ("close",):
            assert attribute.__doc__ or name.startswith("register_"), f"Engine.{name} has no docstring"


def test_a_refused_call_raises_the_services_error_and_writes_nothing(tmp_path, database_url):
    with Engine.open(_config(tmp_path, database_url)) as engine:
        with pytest.raises(errors.NotFound):
            engine.enqueue("nobody", DebitRequestInput(mandate="RUM-1", amount="1.00"), idempotency_key="k-1")
        assert engine.requests().items == ()


def test_a_refused_bank_file_is_recorded_then_raised(tmp_path, database_url):
    bad = tmp_path / "answer.xml"
    bad.write_text("<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.03'><broken>")
    with Engine.open(_config(tmp_path, database_url)) as engine:
        with pytest.raises(errors.UnreadableFile):
            engine.reconcile(bad)
        with engine.session() as session:
            (row,) = session.scalars(select(ReturnFile)).all()
        assert row.status == "refused"


def test_the_operations_the_commands_use_run_through_the_facade(tmp_path, database_url):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "october"
    lines = tmp_path / "requests.jsonl"
    with freeze_time("2026-11-20 09:00:00"), Engine.open(_config(tmp_path, database_url)) as engine:
        loaded = engine.load(fixtures)
        assert loaded.counts["creditors"].created >= 1
        creditor = engine.requests().items[0].creditor_code
        mandate = next(iter(engine.requests().items)).mandate_reference
        lines.write_text(
            f'{{"idempotency_key": "file-1", "creditor": "{creditor}", "mandate": "{mandate}", "amount": "3.00", "on_account": true}}\n'
            f'{{"idempotency_key": "file-2", "creditor": "{creditor}", "mandate": "{mandate}", "amount": "3.001", "on_account": true}}\n'
        )
        with pytest.raises(engine_module.FileRejected):
            engine.enqueue_file(lines)  # all or none: the good line is not applied either
        partial = engine.enqueue_file(lines, skip_bad=True)
        assert (partial.created, len(partial.bad)) == (1, 1)

        (found,) = [m for m in engine.mandates(creditor=creditor).items if m.reference == mandate]
        assert found.status == "active"
        assert engine.release_mandate(creditor, mandate) is False  # not held: nothing to release

        made = engine.create_token(name="billing", creditors=[creditor], access="write")
        assert made.token.startswith("sek_")
        assert [view.name for view in engine.tokens()] == ["billing"]
        assert engine.revoke_token(made.view.id).revoked_at is not None

        assert engine.return_exceptions() == []
        policy = engine.set_reason_policy(creditor, "AM04", max_retries=0)
        assert policy.max_retries == 0
        assert ("AM04", True) in [(p.code, overridden) for p, overridden in engine.reason_policies(creditor)]
        with pytest.raises(errors.NotFound):
            engine.approve_batch(999_999, actor="ops")
        with pytest.raises(errors.NotFound):
            engine.resolve_exception(999_999, resolution="ignored")


def test_an_operator_cancels_a_pending_request_and_not_one_a_run_took(db, tmp_path, database_url):
    # Only the HTTP API could cancel a request: an operator who withdrew a held file for one
    # wrong debit had no command to keep that debit out of the next run.
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    engine = Engine(load_settings(_config(tmp_path, database_url)), database=db, clock=world.clock())
    data = DebitRequestInput(mandate="RUM-PRE-AG-1", amount="76.00", on_account=True)
    first = engine.enqueue("pressimmo", data, idempotency_key="k-1")

    cancelled = engine.cancel_request("pressimmo", first.id, actor="ops:claire", reason="paid by transfer")

    assert cancelled["status"] == "cancelled"
    (row,) = engine.requests(creditor="pressimmo").items
    assert (row.status, row.reason) == ("cancelled", "cancelled by ops:claire: paid by transfer")
    # Again: already cancelled, nothing changes.
    assert engine.cancel_request("pressimmo", first.id, actor="someone else")["status"] == "cancelled"
    with pytest.raises(errors.NotFound):
        engine.cancel_request("pressimmo", 999_999, actor="ops:claire")
    taken = engine.enqueue("pressimmo", data, idempotency_key="k-2")
    with engine.session() as session:  # as a collection run's assignment leaves it
        session.execute(update(DebitRequest).where(DebitRequest.id == taken.id).values(status="assigned"))
    with pytest.raises(errors.CollectionError, match="only a pending request can be cancelled"):
        engine.cancel_request("pressimmo", taken.id, actor="ops:claire")


# --- the customer accounts through the facade --------------------------------------------
def test_a_file_reconciled_during_an_inbox_pass_waits_for_the_pass_to_end(tmp_path, database_url):
    # `sepa-engine reconcile` beside the scheduler's inbox import: one reconciliation at a time.
    bad = tmp_path / "answer.xml"
    bad.write_text("<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.03'><broken>")
    with Engine.open(_config(tmp_path, database_url)) as engine:
        with locks.run_lock(engine.database, locks.RECONCILIATION_LOCK):
            thread, outcome = in_thread(lambda: engine.reconcile(bad))
            thread.join(timeout=0.5)
            assert thread.is_alive() and outcome == []
            with engine.session() as session:
                assert session.scalars(select(ReturnFile)).all() == []
        thread.join(timeout=30)
        (raised,) = outcome
        assert isinstance(raised, errors.UnreadableFile)
        with engine.session() as session:
            assert [row.status for row in session.scalars(select(ReturnFile))] == ["refused"]


def test_a_file_the_database_undoes_to_break_a_deadlock_is_reconciled_whole_on_its_next_try(db, tmp_path, database_url):
    # Before, `sepa-engine reconcile` ended on PostgreSQL's "deadlock detected" with a traceback.
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    path = a_reject_that_locks_a_mandate_then_its_account(db, settings, tmp_path / "answers")
    engine = Engine(load_settings(_config(tmp_path, database_url)), database=db, clock=LATER)
    reconciling, outcome = in_thread(lambda: engine.reconcile(path), start=False)

    the_other_side_of_a_cycle(db, reconciling, go=reconciling.start)
    reconciling.join(timeout=60)

    (report,) = outcome
    assert not isinstance(report, BaseException), report
    assert (report.applied, report.retries, report.duplicate_of) == (1, 1, None)  # type: ignore[attr-defined]
    with engine.session() as session:
        assert [row.status for row in session.scalars(select(ReturnFile))] == ["applied"]


def test_an_enqueue_the_database_undoes_to_break_a_deadlock_is_run_again_and_enqueued_once(db, tmp_path, database_url):
    # Before, `Engine.enqueue` (and every other write of the facade, hence the CLI's) ended on
    # PostgreSQL's "deadlock detected": nothing enqueued, and a traceback for the caller.
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    engine = Engine(load_settings(_config(tmp_path, database_url)), database=db, clock=world.clock())
    data = DebitRequestInput(mandate="RUM-PRE-AG-1", amount="76.00", on_account=True)
    enqueuing, outcome = in_thread(lambda: engine.enqueue("pressimmo", data, idempotency_key="k-1"), start=False)

    # The enqueue share-locks its mandate, then waits for the account.
    with structlog.testing.capture_logs() as logged:
        the_other_side_of_a_cycle(db, enqueuing, go=enqueuing.start)
        enqueuing.join(timeout=60)

    (result,) = outcome
    assert not isinstance(result, BaseException), result
    assert result.created  # type: ignore[attr-defined]
    with engine.session() as session:
        assert [(r.idempotency_key, r.amount_cents) for r in session.scalars(select(DebitRequest))] == [("k-1", 7_600)]
    undone = [(e["what"], e["run"]) for e in logged if e["event"] == "db.transaction_undone"]
    assert undone == ([] if db.is_sqlite else [("Engine.enqueue", 1)])


@pytest.mark.parametrize("given", ["a list", "a generator"])
def test_a_group_of_enqueues_undone_to_break_a_deadlock_is_run_again_only_if_its_items_can_be_read_again(
    db, tmp_path, database_url, given: str,
) -> None:
    # A generator is spent by the undone run: run again on it, the group would commit empty and
    # answer "0 created" for debits never enqueued. It raises instead, and nothing is kept.
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    engine = Engine(load_settings(_config(tmp_path, database_url)), database=db, clock=world.clock())
    listed = [EnqueueItem(f"k-{n}", DebitRequestInput(mandate="RUM-PRE-AG-1", amount="76.00", on_account=True)) for n in (1, 2)]
    items = listed if given == "a list" else (item for item in listed)
    enqueuing, outcome = in_thread(lambda: engine.enqueue_many("pressimmo", items), start=False)

    the_other_side_of_a_cycle(db, enqueuing, go=enqueuing.start)
    enqueuing.join(timeout=60)

    (result,) = outcome
    with engine.session() as session:
        keys = sorted(session.scalars(select(DebitRequest.idempotency_key)))
    if db.is_sqlite or given == "a list":  # SQLite queued the two writers: no cycle
        assert not isinstance(result, BaseException), result
        assert (result.created, keys) == (2, ["k-1", "k-2"])  # type: ignore[attr-defined]
    else:
        assert isinstance(result, OperationalError) and "deadlock detected" in str(result)
        assert keys == []


def _accounts_engine(db, tmp_path: Path, database_url: str) -> Engine:  # type: ignore[no-untyped-def]
    """Two creditors of one group, an account at each for the same customer, two invoices."""
    world.creditor(db, "pressimmo")
    world.creditor(db, "poliris")
    world.account(db, "pressimmo", "AG-1", customer="AGENCE-77")
    world.account(db, "poliris", "PO-1", customer="AGENCE-77")
    world.entry(db, "F1", "100.00")
    world.entry(db, "P1", "20.00", creditor_code="poliris", reference="PO-1")
    return Engine(load_settings(_config(tmp_path, database_url)), database=db, clock=world.clock())


def test_an_entry_is_committed_once_and_its_key_replayed_changes_nothing(db, tmp_path, database_url):
    engine = _accounts_engine(db, tmp_path, database_url)
    data = LedgerEntryInput(kind="invoice", number="F3", issue_date=dt.date(2026, 11, 2), amount="25.00")
    first = engine.record_entry("pressimmo", "AG-1", data, idempotency_key="inv-F3")
    again = engine.record_entry("pressimmo", "AG-1", data, idempotency_key="inv-F3")
    assert (first.created, again.created, again.amount_cents) == (True, False, 2_500)
    assert world.position(db).balance_due_cents == 12_500  # committed, and counted once
    other = LedgerEntryInput(kind="invoice", number="F3", issue_date=dt.date(2026, 11, 2), amount="26.00")
    with pytest.raises(errors.IdempotencyConflict) as caught:
        engine.record_entry("pressimmo", "AG-1", other, idempotency_key="inv-F3")
    assert caught.value.code == "idempotency_conflict"
    assert world.position(db).balance_due_cents == 12_500


def test_a_group_payment_refused_at_one_creditor_debits_none_of_them(db, tmp_path, database_url):
    engine = _accounts_engine(db, tmp_path, database_url)
    bad = GroupPaymentInput(customer_reference="AGENCE-77", selections=(
        GroupSelection(creditor="pressimmo", invoices=("F1",)), GroupSelection(creditor="poliris", invoices=("NOPE",)),
    ))  # fmt: skip
    with pytest.raises(errors.SepaEngineError) as caught:
        engine.pay_group(bad, idempotency_key="grp-1")
    assert caught.value.code in ("not_found", "invoice_not_payable")
    assert engine.requests().items == ()  # rolled back: not even pressimmo's debit
    good = GroupPaymentInput(customer_reference="AGENCE-77", selections=(
        GroupSelection(creditor="pressimmo", invoices=("F1",)), GroupSelection(creditor="poliris", invoices=("P1",)),
    ))  # fmt: skip
    paid = engine.pay_group(good, idempotency_key="grp-2")
    replay = engine.pay_group(good, idempotency_key="grp-2")
    assert (paid.created, replay.created, paid.amount_cents) == (True, False, 12_000)
    assert len(engine.requests().items) == 2


def test_a_dispute_opens_moves_on_and_reads_back_through_the_facade(db, tmp_path, database_url):
    engine = _accounts_engine(db, tmp_path, database_url)
    data = DisputeInput(reason="already paid", invoices=(DisputedInvoice(number="F1"),))
    opened = engine.open_dispute("pressimmo", "AG-1", data, actor="portal:jeanne", idempotency_key="d-1")
    replay = engine.open_dispute("pressimmo", "AG-1", data, actor="portal:jeanne", idempotency_key="d-1")
    assert (opened.created, replay.created, replay.id) == (True, False, opened.id)
    assert world.position(db).collectable_cents == 0  # the disputed invoice is not collected
    with pytest.raises(errors.NotFound) as caught:
        engine.transition_dispute("poliris", opened.id, DisputeTransitionInput(status="accepted"), actor="staff:x",
                                  idempotency_key="t-0")
    assert caught.value.code == "not_found"  # another creditor's dispute does not exist for it
    accepted = engine.transition_dispute("pressimmo", opened.id, DisputeTransitionInput(status="accepted"),
                                         actor="staff:x", idempotency_key="t-1")
    assert accepted.credit_note == f"D-{opened.id}"
    assert [d.status for d in engine.disputes("pressimmo", account="AG-1")] == ["accepted"]
    assert [e.status for e in engine.dispute("pressimmo", opened.id).history][-1] == "accepted"


def test_account_changes_commit_with_their_history_and_replay_by_key(db, tmp_path, database_url):
    engine = _accounts_engine(db, tmp_path, database_url)
    details = DetailsInput({"email": "agence@example.org"})
    changed = engine.update_details("pressimmo", "AG-1", details, actor="portal", idempotency_key="det-1")
    assert engine.update_details("pressimmo", "AG-1", details, actor="portal", idempotency_key="det-1").id == changed.id
    assert [(h.field, h.new_value) for h in engine.account_history("pressimmo", "AG-1")][-1] == ("email",
                                                                                                 "agence@example.org")
    settings = engine.set_creditor_settings("pressimmo", CreditorSettingsInput(prenotification_days=5),
                                            actor="staff:x", idempotency_key="set-1")
    assert [field for field, _old, new in settings.fields] == ["prenotification_days"] and settings.fields[0][2] == "5"
    with pytest.raises(errors.WrongCollectionMode) as caught:  # automatic needs a new e-signed mandate
        engine.set_collection_mode("pressimmo", "AG-1", ModeChangeInput(mode="automatic", frequency="monthly", day=7),
                                   actor="portal", idempotency_key="mode-0")
    assert caught.value.code == "wrong_collection_mode" and engine.account("pressimmo", "AG-1").collection_mode == "on_demand"
    mode = ModeChangeInput(mode="automatic", frequency="monthly", day=7, mandate=world.signed_mandate("RUM-E-AG-1"))
    engine.set_collection_mode("pressimmo", "AG-1", mode, actor="portal", idempotency_key="mode-1")
    assert engine.account("pressimmo", "AG-1").collection_mode == "automatic"
    moved = engine.change_bank_details("pressimmo", "AG-1", world.signed_mandate("RUM-E-2", evidence="ev-2"),
                                       actor="portal", idempotency_key="bank-1")
    assert moved.created and engine.account("pressimmo", "AG-1").mandate.reference == "RUM-E-2"  # type: ignore[union-attr]


def test_the_schedule_runs_once_per_period_and_its_prenotifications_read_back(db, tmp_path, database_url):
    engine = _accounts_engine(db, tmp_path, database_url)
    world.go_automatic(db, day=7)
    window = dt.date(2026, 11, 23)  # pre-notification lead time before the 7 December debit
    first = engine.schedule_automatic(run_date=window, creditor="pressimmo")
    again = engine.schedule_automatic(run_date=window, creditor="pressimmo")
    assert len(first.requested) == 1 and again.requested == ()  # the period is not debited twice
    (record,) = engine.prenotifications("pressimmo")
    assert record["account"] == "AG-1" and record["end_to_end_id"] == first.requested[0].end_to_end_id
    assert engine.book_payments(creditor="pressimmo").booked == 0  # nothing reached the bank yet


def test_the_files_a_run_wrote_and_the_status_read_back_through_the_facade(tmp_path, database_url):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "october"
    with freeze_time("2026-10-22 09:00:00"), Engine.open(_config(tmp_path, database_url)) as engine:
        engine.load(fixtures)
        engine.collect(business_date=dt.date(2026, 10, 22))
        listed = engine.batches()
        assert listed and all(b.business_date == dt.date(2026, 10, 22) for b in listed)
        assert [b.id for b in listed] == sorted((b.id for b in listed), reverse=True)  # newest first
        newest = listed[0]
        assert engine.batches(creditor=newest.creditor_code, limit=1)[0].id == newest.id
        shown = engine.batch(newest.id)
        assert (shown.creditor_code, shown.message_id, len(shown.requests)) == (
            newest.creditor_code, newest.message_id, newest.transactions,
        )  # fmt: skip
        assert sum(r.amount_cents for r in shown.requests) == newest.sum_cents
        assert shown.document["requests"] == [r.to_dict() for r in shown.requests]
        with pytest.raises(errors.NotFound) as caught:
            engine.batch(999_999)
        assert caught.value.code == "not_found"
        overview = engine.status()
        assert overview["at"].startswith("2026-10-22T09:00:00")  # the engine's clock, not the wall's
        # Every request went into a file: each creditor is shown with nothing pending.
        assert {c["creditor"]: c["pending"] for c in overview["creditors"]} == {b.creditor_code: 0 for b in listed}
