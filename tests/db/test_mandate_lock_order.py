"""An enqueue share-locks the mandates it names in id order, as every other writer locks
mandates (ARCHITECTURE, "One lock order"). In the order its (creditor, reference) index
returned them, an enqueue naming two mandates could hold the second while a reconciliation,
locking in id order, held the first and waited for the second: a deadlock."""

from __future__ import annotations

from sqlalchemy import select

from sepa_engine.db.models import Creditor
from sepa_engine.db.repositories import registry as repo
from tests import accounts_world as world
from tests.db.plans import plans_of


def test_an_enqueues_mandates_come_and_are_locked_in_id_order(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-B", mandate="RUM-B")  # the lower id, the later reference
    world.account(db, "pressimmo", "AG-A", mandate="RUM-A")
    with db.transaction() as s:
        creditor_id = s.scalars(select(Creditor.id)).one()
        with plans_of(s, "FROM mandates", sqlite=db.is_sqlite) as plans:
            found = repo.mandates_in_force_of(s, {creditor_id: {"RUM-A", "RUM-B"}}, share_lock=not db.is_sqlite)

    ids = [view.id for view in found.values()]
    assert [view.reference for view in found.values()] == ["RUM-B", "RUM-A"]
    assert ids == sorted(ids)
    (plan,) = plans
    if not db.is_sqlite:  # the rows are locked as they leave the sort: LockRows above it
        lines = plan.splitlines()
        lock = next(i for i, line in enumerate(lines) if "LockRows" in line)
        sort = next(i for i, line in enumerate(lines) if "Sort" in line and "Sort Key" not in line)
        assert lock < sort and "Sort Key: mandates.id" in plan, plan
