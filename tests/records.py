"""Upstream records as JSON (what ``sepa-engine load`` reads), valid unless told otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILES = {
    "creditors": "creditors.json",
    "debtor_accounts": "debtor-accounts.json",
    "mandates": "mandates.json",
    "requests": "requests.json",
}


def creditor(**overrides: Any) -> dict[str, Any]:
    return {
        "idempotency_key": "creditor-martin",
        "code": "martin",
        "name": "Gestion Immobiliere Martin",
        "creditor_identifier": "FR72ZZZ123456",
        "iban": "FR7630006000011234567890189",
        "bic": "AGRIFRPP",
        "address": {"country": "FR", "town": "Paris", "postcode": "75001"},
        **overrides,
    }


def debtor_account(n: int = 1, **overrides: Any) -> dict[str, Any]:
    return {
        "idempotency_key": f"account-{n}",
        "creditor": "martin",
        "reference": f"CUST-{n}",
        "name": f"Locataire {n}",
        "address": {"country": "FR", "town": "Lyon"},
        **overrides,
    }


def mandate(n: int = 1, **overrides: Any) -> dict[str, Any]:
    return {
        "idempotency_key": f"mandate-{n}",
        "creditor": "martin",
        "reference": f"RUM-{n:06d}",
        "debtor_account": f"CUST-{n}",
        "signed_on": "2025-01-15",
        "iban": "DE89370400440532013000",
        **overrides,
    }


def request(n: int = 1, mandate_n: int = 1, **overrides: Any) -> dict[str, Any]:
    return {
        "idempotency_key": f"request-{n}",
        "creditor": "martin",
        "mandate": f"RUM-{mandate_n:06d}",
        "amount": "12.34",
        "remittance": f"Loyer novembre {n}",
        "requested_date": "2026-12-01",
        # The creditor's billing keeps no invoices here: it says so (the account gate).
        "on_account": True,
        **overrides,
    }


def valid_set(accounts: int = 2) -> dict[str, list[dict[str, Any]]]:
    return {
        "creditors": [creditor()],
        "debtor_accounts": [debtor_account(n) for n in range(1, accounts + 1)],
        "mandates": [mandate(n) for n in range(1, accounts + 1)],
        "requests": [request(n, n) for n in range(1, accounts + 1)],
    }


def write_directory(directory: Path, records: dict[str, list[dict[str, Any]]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for kind, rows in records.items():
        (directory / FILES[kind]).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return directory
