"""A group of enqueues spread over several creditors answers and stores what the same calls
give one at a time.

The batcher writes a group's creditors together (``batch_enqueue.enqueue_parts``: one gate
read and one INSERT for them all, each row read checked against its own creditor). Random
groups of calls over three creditors, each with two accounts holding the same invoice numbers,
are run through the batcher on one set of creditors, and one call after the other through
``registry.enqueue_request`` on an identical second set. A group the services accept whole
must give every call the answer it got alone and leave the same rows (requests, invoices
booked, invoices each debit pays); a group with any refusal must store nothing (its calls
then each run alone, as on the second set). ``make test`` runs 6 groups; ``make fuzz``
(SEPA_ENGINE_MODEL_EXAMPLES) 300.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from typing import Any

from fastapi.responses import Response
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from stdnum.eu import at_02

from sepa_engine import errors
from sepa_engine.api import writes
from sepa_engine.api.batcher import Call, EnqueueBatcher
from sepa_engine.api.routes.registry import request_result
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, LedgerEntry, Mandate, RequestInvoice
from sepa_engine.db.session import Database
from sepa_engine.services import api_tokens, registry
from sepa_engine.services.inputs import AddressInput, CreditorInput, DebitRequestInput, DebtorAccountInput, MandateInput
from tests import accounts_world as world

EXAMPLES = int(os.environ.get("SEPA_ENGINE_MODEL_EXAMPLES", "6"))
CLOCK = world.clock()
ALONE = Response("alone", status_code=299)
ACCOUNTS = ("AG-1", "AG-2")
_worlds = itertools.count(1)

# (creditor, account, what it pays, cents, invoice pick)
calls_st = st.lists(
    st.tuples(
        st.integers(0, 2), st.integers(0, 1), st.sampled_from(["on_account", "balance", "carried", "named"]),
        st.integers(1, 30_000), st.integers(1, 3),
    ),
    min_size=2, max_size=8,  # a group of one call runs alone (batcher._run_locked)
)


def _world(db: Database, n: int, side: str) -> list[str]:
    """Three creditors, each with two accounts; account AG-1 owes invoices F-1 and F-2."""
    codes = [f"g{n}-{side.lower()}{i}" for i in range(3)]
    for i, code in enumerate(codes):
        number = f"{n:04d}{i}{'AB'.index(side)}"[-6:]
        identifier = "FR" + at_02.calc_check_digits(f"FR00ZGZ{number}") + f"ZGZ{number}"
        with db.transaction() as s:
            registry.register_creditor(
                s, CreditorInput(code=code, name=f"Group {code}", creditor_identifier=identifier,
                                 iban="FR7630006000011234567890189", address=AddressInput(country="FR", town="Paris")),
                idempotency_key=f"c-{code}", clock=CLOCK,
            )
            for reference in ACCOUNTS:
                registry.register_debtor_account(s, code, DebtorAccountInput(reference=reference, name=f"Client {reference}"),
                                                 idempotency_key=f"a-{reference}", clock=CLOCK)
                registry.register_mandate(
                    s, code, MandateInput(reference=f"RUM-{reference}", debtor_account=reference,
                                          signed_on=dt.date(2025, 1, 15), iban=world.DEBTOR_IBAN),
                    idempotency_key=f"m-{reference}", clock=CLOCK,
                )
        world.entry(db, "F-1", "100.00", creditor_code=code, reference="AG-1")
        world.entry(db, "F-2", "40.00", creditor_code=code, reference="AG-1")
    return codes


def _data(account: int, pays: str, cents: int, pick: int) -> DebitRequestInput:
    amount = f"{cents // 100}.{cents % 100:02d}"
    mandate = f"RUM-{ACCOUNTS[account]}"
    if pays == "on_account":
        return DebitRequestInput(mandate=mandate, amount=amount, on_account=True)
    if pays == "carried":
        return DebitRequestInput(mandate=mandate, amount=amount, invoice_number=f"N-{pick}",
                                 invoice_issue_date=dt.date(2026, 11, 2))
    if pays == "named":
        return DebitRequestInput(mandate=mandate, amount=amount, invoices=[f"F-{pick}"])
    return DebitRequestInput(mandate=mandate, amount=amount)


def _call(code: str, token: int, key: str, data: DebitRequestInput) -> Call:
    path = f"/v1/creditors/{code}/debit-requests"
    return Call(code, f"creditor:{code}", token, key, "POST", path, writes.request_hash("POST", path, key.encode()), data,
                alone=lambda: ALONE)


def _answer(body: dict[str, Any]) -> tuple[Any, ...]:
    # The ids, end-to-end ids and creditor codes differ between the two sets by construction.
    return body["mandate"], body["amount"], body["requested_date"], body["status"], body["created"], body["problems"]


def _stored(db: Database, codes: list[str]) -> list[Any]:
    """Each creditor's requests (with the invoices each pays) and invoices, in a form equal
    across the two sets."""
    found = []
    with db.reader() as s:
        for code in codes:
            creditor_id = s.scalars(select(Creditor.id).where(Creditor.code == code)).one()
            requests = s.execute(
                select(DebitRequest.id, Mandate.reference, DebitRequest.amount_cents, DebitRequest.pays, DebitRequest.status)
                .join(Mandate, Mandate.id == DebitRequest.mandate_id)
                .where(DebitRequest.creditor_id == creditor_id).order_by(DebitRequest.id)
            ).all()
            paid = s.execute(
                select(RequestInvoice.debit_request_id, LedgerEntry.document_number, RequestInvoice.amount_cents)
                .join(LedgerEntry, LedgerEntry.id == RequestInvoice.entry_id)
                .where(RequestInvoice.creditor_id == creditor_id).order_by(RequestInvoice.id)
            ).all()
            invoices = s.execute(
                select(LedgerEntry.document_number, DebtorAccount.reference, LedgerEntry.amount_cents, LedgerEntry.issue_date)
                .join(DebtorAccount, DebtorAccount.id == LedgerEntry.debtor_account_id)
                .where(LedgerEntry.creditor_id == creditor_id).order_by(LedgerEntry.document_number)
            ).all()
            found.append((
                [(ref, cents, pays, status, [(n, c) for r, n, c in paid if r == rid]) for rid, ref, cents, pays, status in requests],
                [tuple(row) for row in invoices],
            ))
    return found


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(calls=calls_st)
def test_a_group_over_several_creditors_answers_and_stores_what_each_call_gets_alone(db: Database, calls) -> None:  # type: ignore[no-untyped-def]
    n = next(_worlds)
    grouped, alone = _world(db, n, "A"), _world(db, n, "B")
    with db.transaction() as s:
        token = api_tokens.create_token(s, name=f"billing-{n}", creditors=grouped, access="write", clock=CLOCK).view.id
    group = [_call(grouped[c], token, f"k{i}", _data(a, pays, cents, pick)) for i, (c, a, pays, cents, pick) in enumerate(calls)]
    EnqueueBatcher(db, CLOCK, request_result)._run(group)

    # The batcher writes a group creditor by creditor, in the order their first calls came.
    order = sorted(range(len(calls)), key=lambda i: ([c for c, *_ in calls].index(calls[i][0]), i))
    one_by_one: dict[int, tuple[Any, ...] | None] = {}
    for i in order:
        c, a, pays, cents, pick = calls[i]
        try:
            with db.transaction() as s:
                result = registry.enqueue_request(s, alone[c], _data(a, pays, cents, pick), idempotency_key=f"k{i}", clock=CLOCK)
            one_by_one[i] = _answer(request_result(result))
        except errors.SepaEngineError:
            one_by_one[i] = None

    answers = [call.done.result() for call in group]
    refused = any(answer is None for answer in one_by_one.values())
    event("a call refused: the group stores nothing" if refused else "every call accepted")
    if refused:
        assert answers == [ALONE] * len(group)
        assert all(requests == [] for requests, _ in _stored(db, grouped))
        return
    assert [a.status_code for a in answers] == [201] * len(group)
    assert [_answer(json.loads(a.body)) for a in answers] == [one_by_one[i] for i in range(len(calls))]
    assert _stored(db, grouped) == _stored(db, alone)
