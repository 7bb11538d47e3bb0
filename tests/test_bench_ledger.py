"""The bench ledger's debtor accounts: one valid IBAN per mandate, so that no cache keyed on
an IBAN can make a collection-run figure look better than a real rent roll would."""

from __future__ import annotations

import pytest

from bench.ledger import debtor_iban, iban_from_bban, mandate_row
from sepa_engine import errors
from sepa_engine.domain.identifiers import validate_iban


def test_every_bench_mandate_has_its_own_iban() -> None:
    ibans = [mandate_row(i)["iban"] for i in range(1, 20_001)]
    assert len(set(ibans)) == len(ibans)


@pytest.mark.parametrize("i", [1, 2, 10, 20, 99_991, 99_992, 1_000_000])
def test_bench_ibans_pass_every_check_of_validate_iban(i: int) -> None:
    iban = debtor_iban(i)
    assert validate_iban(iban) == iban


def test_bench_ibans_span_countries_with_national_check_digits() -> None:
    countries = {debtor_iban(i)[:2] for i in range(1, 41)}
    assert countries == {"FR", "BE", "ES"}


@pytest.mark.parametrize("i", [1, 10, 20])
def test_a_wrong_national_check_digit_in_a_bench_iban_would_be_refused(i: int) -> None:
    # The generator computes the national digits itself: proof that they are the ones
    # validate_iban checks, and not digits it ignores.
    iban = debtor_iban(i)
    country, bban = iban[:2], iban[4:]
    where = {"FR": slice(21, 23), "BE": slice(10, 12), "ES": slice(8, 10)}[country]
    wrong = f"{(int(bban[where]) + 1) % 97 or 1:02d}"
    damaged = iban_from_bban(country, bban[: where.start] + wrong + bban[where.stop :])
    with pytest.raises(errors.InvalidChecksum, match="national check digits"):
        validate_iban(damaged)


def test_the_schedule_workload_requests_every_account_that_owes_and_checks_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bench.ledger import schedule

    # It raises when the run requested other than the 57 owing accounts of 60 (one in twenty owes nothing).
    assert schedule("sqlite", 60, tmp_path) > 0


def test_the_established_ledger_workloads_run_a_month_on_and_check_what_they_requested(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bench.ledger import enqueue, schedule

    # Each raises unless every request was enqueued, or every owing account requested in January.
    assert enqueue("sqlite", 40, tmp_path, established=True) > 0
    assert schedule("sqlite", 60, tmp_path, established=True) > 0


def test_advance_sequences_moves_every_id_sequence_past_the_seeded_rows_once_statistics_are_fresh(db) -> None:  # type: ignore[no-untyped-def]
    # On PostgreSQL, after ANALYZE, its one statement called pg_get_serial_sequence for
    # alembic_version, which has no id column, and the seeding failed.
    from sqlalchemy import insert, select, text

    from bench.ledger import account_rows, advance_sequences, seed
    from sepa_engine.db.models import DebtorAccount

    seed(db, 3)
    if not db.is_sqlite:
        with db.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    advance_sequences(db)
    with db.transaction() as s:
        s.execute(insert(DebtorAccount), [{k: v for k, v in row.items() if k != "id"} for row in account_rows(range(4, 5))])
    with db.reader() as s:
        assert s.scalars(select(DebtorAccount.id).order_by(DebtorAccount.id)).all() == [1, 2, 3, 4]
