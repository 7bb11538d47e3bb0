"""A replay answers what the first call stored, even after its mandate was superseded.

Superseding moves the pending requests to the new mandate, but not those that left the
queue: a cancelled (or collected) request stays on the mandate it was collected under. The
batch path answered such a replay with the mandate now in force under the reference (the
successor), while one request alone answered with the request's own; both now read the row.
"""

from __future__ import annotations

import datetime as dt

from sepa_engine.services import api_views, registry
from sepa_engine.services.batch_enqueue import EnqueueItem, enqueue_requests
from sepa_engine.services.inputs import DebitRequestInput, MandateInput
from tests import accounts_world as world


def test_a_batch_replay_names_the_requests_own_mandate_after_it_was_superseded(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1", mandate="RUM-OLD")
    item = EnqueueItem("k-1", DebitRequestInput(mandate="RUM-OLD", amount="12.00", on_account=True))
    with db.transaction() as s:
        (first,) = enqueue_requests(s, "pressimmo", [item], clock=world.clock()).results
        api_views.cancel_request(s, "pressimmo", first.id, clock=world.clock())
    with db.transaction() as s:
        registry.register_mandate(
            s, "pressimmo",
            MandateInput(reference="RUM-NEW", debtor_account="AG-1", signed_on=dt.date(2026, 11, 1),
                         iban=world.NEW_IBAN, supersedes="RUM-OLD"),
            idempotency_key="mandate-new", clock=world.clock(),
        )
    with db.transaction() as s:
        (again,) = enqueue_requests(s, "pressimmo", [item], clock=world.clock()).results
        alone = registry.enqueue_request(s, "pressimmo", item.data, idempotency_key="k-1", clock=world.clock())
    assert not again.created and again.status == "cancelled"
    assert (again.mandate_id, again.mandate_reference) == (first.mandate_id, "RUM-OLD")
    assert alone == again
