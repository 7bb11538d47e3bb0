"""Rows straight into the ledger for service tests (the registry API has its own tests)."""

from __future__ import annotations

import datetime as dt
import itertools

from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.db.session import Database

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)
_seq = itertools.count(1)


def creditor(db: Database, code: str = "martin", **overrides: object) -> int:
    values: dict[str, object] = dict(
        code=code, name="Gestion Immobiliere Martin", creditor_identifier="FR72ZZZ123456",
        iban="FR7630006000011234567890189", bic="AGRIFRPP", local_instrument="CORE",
        pain008_version="pain.008.001.08", lead_days=1, cutoff="16:00", timezone="Europe/Paris",
        max_per_file=1000, first_collection_policy="frst", address_country="FR", address_town="Paris",
        created_at=T0,
    )
    values.update(overrides)
    with db.transaction() as s:
        row = Creditor(**values)
        s.add(row)
        s.flush()
        return row.id


def mandate(db: Database, creditor_id: int, reference: str | None = None, **overrides: object) -> int:
    n = next(_seq)
    account_fields = {k[len("debtor_"):]: overrides.pop(k) for k in ("debtor_name", "debtor_country", "debtor_town") if k in overrides}
    with db.transaction() as s:
        if "debtor_account_id" in overrides:
            values_account_id = overrides.pop("debtor_account_id")
        else:
            values_account_id = None
        account = DebtorAccount(
            creditor_id=creditor_id, reference=f"CUST-{n}", name=account_fields.get("name", f"Locataire {n}"),
            address_country=account_fields.get("country", "FR"), address_town=account_fields.get("town", "Lyon"),
            created_at=T0,
        )
        if values_account_id is None:
            s.add(account)
            s.flush()
            values_account_id = account.id
        values: dict[str, object] = dict(
            creditor_id=creditor_id, debtor_account_id=values_account_id, reference=reference or f"RUM-{n:06d}",
            signed_on=dt.date(2025, 1, 15), iban="DE89370400440532013000", bic=None, kind="recurrent",
            status="active", status_changed_at=T0, created_at=T0,
        )
        values.update(overrides)
        row = Mandate(**values)
        s.add(row)
        s.flush()
        return row.id


def request(db: Database, creditor_id: int, mandate_id: int, amount_cents: int = 10_000, **overrides: object) -> int:
    n = next(_seq)
    values: dict[str, object] = dict(
        creditor_id=creditor_id, mandate_id=mandate_id, idempotency_key=f"key-{n}", content_hash="x" * 64,
        end_to_end_id=f"E2E-{n:010d}", amount_cents=amount_cents, remittance=f"Loyer {n}",
        requested_date=dt.date(2026, 11, 24), status="pending", status_changed_at=T0, created_at=T0,
    )
    values.update(overrides)
    with db.transaction() as s:
        row = DebitRequest(**values)
        s.add(row)
        s.flush()
        return row.id


def many_requests(db: Database, creditor_id: int, count: int, mandates: int | None = None) -> list[int]:
    """``count`` requests spread over ``mandates`` mandates (one each by default), in bulk."""
    mandates = mandates or count
    mandate_ids = [mandate(db, creditor_id) for _ in range(mandates)]
    rows = []
    with db.transaction() as s:
        for i in range(count):
            n = next(_seq)
            rows.append(DebitRequest(
                creditor_id=creditor_id, mandate_id=mandate_ids[i % mandates], idempotency_key=f"key-{n}",
                content_hash="x" * 64, end_to_end_id=f"E2E-{n:010d}", amount_cents=1_000 + i,
                requested_date=dt.date(2026, 11, 24), status="pending", status_changed_at=T0, created_at=T0,
            ))
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]
