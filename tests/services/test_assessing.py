"""The run's assessment in child processes decides what one process decides, and fails the run
when a child fails."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time

import pytest

from sepa_engine import errors
from sepa_engine.domain.assignment import Assessor, DueRow, Terms
from sepa_engine.domain.bank_profiles import AddressForm
from sepa_engine.domain.mandate import FirstCollectionPolicy
from sepa_engine.services import assessing

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
TERMS = Terms(
    creditor_identifier="FR72ZZZ123456", policy=FirstCollectionPolicy("frst"), now=NOW, lead_days=1,
    cutoff=dt.time(16, 0), timezone="Europe/Paris", closed=(), earliest=dt.date(2026, 11, 24),
    address_form=AddressForm.STRUCTURED, creditor_has_address=True,
)
IBANS = ("DE89370400440532013000", "NL91ABNA0417164300", "BE68539007547034", "FR1420041010050500013M02606")


def _row(request_id: int, mandate_id: int, **changes: object) -> DueRow:
    values: dict[str, object] = {
        "id": request_id, "mandate_id": mandate_id, "amount_cents": 1_000 + request_id, "requested_date": dt.date(2026, 11, 24),
        "final": False, "end_to_end_id": f"E2E-{request_id}", "remittance": None, "mandate_reference": f"RUM-{mandate_id}",
        "mandate_kind": "recurrent", "mandate_status": "active", "mandate_signed_on": dt.date(2025, 1, 15),
        "mandate_iban": IBANS[mandate_id % len(IBANS)], "mandate_bic": None, "first_collected_on": None,
        "last_collected_on": None, "final_collected": False, "amendment_pending": False,
        "presented_creditor_identifier": None, "previous_reference": None, "previous_iban": None, "previous_bic": None,
        "debtor_name": "Jean Dupont", "debtor_country": "FR", "debtor_town": "Lyon",
    }
    values.update(changes)
    return DueRow(**values)  # type: ignore[arg-type]


def _ledger() -> list[DueRow]:
    """Requests by mandate then id, as the run reads them: mandates with several requests (the
    first FRST, the next RCUR), one collected before, one changed bank since, refusals."""
    rows: list[DueRow] = []
    request_id = 0
    for mandate_id in range(1, 16):
        for n in range(1 + mandate_id % 4):
            request_id += 1
            changes: dict[str, object] = {"requested_date": dt.date(2026, 11, 24 + n)}
            if mandate_id == 3:
                changes.update(first_collected_on=dt.date(2025, 2, 5), last_collected_on=dt.date(2026, 10, 5))
            if mandate_id == 5:
                changes.update(first_collected_on=dt.date(2025, 2, 5), last_collected_on=dt.date(2026, 10, 5),
                               amendment_pending=True, previous_iban="DE89370400440532013000")
            if mandate_id == 7 and n == 1:
                changes.update(amount_cents=0)  # AM01
            if mandate_id == 11:
                changes.update(mandate_status="revoked")
            rows.append(_row(request_id, mandate_id, **changes))
    return rows


def _in_chunks(rows: list[DueRow], sizes: list[int]) -> list[list[DueRow]]:
    chunks, start = [], 0
    for size in sizes:
        chunks.append(rows[start:start + size])
        start += size
    assert start == len(rows)
    return chunks


class _Children:
    """Records the children the run starts and how many chunks each is sent; ``chunks`` holds
    back the third chunk until every child has started, so children do assess."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[assessing._Child] = []
        self.sent: dict[int, int] = {}
        children = self

        class Recorded(assessing._Child):
            def __init__(self):
                super().__init__()
                children.made.append(self)

            def send(self, rows, assessor):
                children.sent[id(self)] = children.sent.get(id(self), 0) + 1
                super().send(rows, assessor)

        monkeypatch.setattr(assessing, "_Child", Recorded)

    def chunks(self, chunks: list[list[DueRow]]):
        for i, chunk in enumerate(chunks):
            if i == 2:
                deadline = time.monotonic() + 60
                while not (self.made and all(child.started() for child in self.made)):
                    assert time.monotonic() < deadline, "the children did not start"
                    time.sleep(0.01)
            yield chunk


def _assessed(chunks, assessor):
    with assessing.Assessors() as assessors:
        yield from assessors.assessed(chunks, assessor)


def _flatten(answers):
    refused, decided = [], []
    for chunk_refused, chunk_decided in answers:
        refused += chunk_refused
        decided += chunk_decided
    return refused, decided


@pytest.mark.parametrize("sizes", [
    [1] * 39,  # every chunk alone, so mandates go on across many chunks and both children
    [2, 3, 5, 1, 4, 6, 2, 3, 8, 5],
    [30, 9],
], ids=["one-row-chunks", "uneven-chunks", "two-chunks"])
def test_chunks_assessed_in_children_decide_what_one_assessor_decides_over_the_whole(sizes, monkeypatch):
    rows = _ledger()
    assert len(rows) == 39
    expected = Assessor(TERMS).assess(rows)
    children = _Children(monkeypatch)

    answers = list(_assessed(children.chunks(_in_chunks(rows, sizes)), Assessor(TERMS)))

    assert len(answers) == len(sizes)
    assert _flatten(answers) == expected
    assert len(children.made) == assessing.CHILDREN
    assert sum(children.sent.values()) >= len(sizes) - 2 - 1  # all but those assessed before they started
    if len(sizes) > 10:
        assert len(children.sent) == assessing.CHILDREN
    refused, decided = expected
    # The ledger exercises what the children must carry: FRST then RCUR on one mandate,
    # an amendment, refusals with their codes.
    assert {d.sequence_type for d in decided} == {"FRST", "RCUR"}
    assert any(d.amend_original_iban for d in decided) or any(d.amend_new_debtor_agent for d in decided)
    assert {r.reason_code for r in refused} >= {"AM01"} and len({r.reason_code for r in refused}) == 2


def test_a_mandate_going_on_across_chunks_is_first_then_recurrent_in_children(monkeypatch):
    # Each mandate's four requests come one chunk each.
    rows = [_row(i, 1) for i in range(1, 5)] + [_row(i, 2) for i in range(5, 9)]
    children = _Children(monkeypatch)

    _refused, decided = _flatten(_assessed(children.chunks([[row] for row in rows]), Assessor(TERMS)))

    assert [(d.id, d.sequence_type) for d in decided] == [
        (1, "FRST"), (2, "RCUR"), (3, "RCUR"), (4, "RCUR"), (5, "FRST"), (6, "RCUR"), (7, "RCUR"), (8, "RCUR"),
    ]


class _FailingAssessor(Assessor):
    """Raises what no assessment should (a fault of the code, not of a request), in a child."""

    def __init__(self, terms: Terms) -> None:
        super().__init__(terms)
        self.parent = os.getpid()  # pickled with it: the child compares its own

    def assess(self, rows):
        if os.getpid() != self.parent:
            raise RuntimeError("assessor fault")
        return super().assess(rows)


class _DyingAssessor(_FailingAssessor):
    def assess(self, rows):
        if os.getpid() != self.parent:
            os._exit(3)
        return super().assess(rows)


@pytest.mark.parametrize(("assessor", "said"), [
    (_FailingAssessor, "RuntimeError('assessor fault')"),
    (_DyingAssessor, "stopped before answering"),
], ids=["a-fault-in-a-child", "a-child-that-dies"])
def test_a_failing_child_fails_the_run_with_the_assessor_named_instead_of_losing_its_chunk(assessor, said, monkeypatch):
    chunks = [[_row(i, i)] for i in range(1, 30)]

    with pytest.raises(errors.CollectionError) as raised:
        list(_assessed(_Children(monkeypatch).chunks(chunks), assessor(TERMS)))

    assert raised.value.field == "assessor"
    assert said in str(raised.value)


def test_the_children_of_a_run_assess_each_creditor_on_its_own_terms(monkeypatch):
    later = dataclasses.replace(TERMS, now=NOW + dt.timedelta(days=7), earliest=dt.date(2026, 12, 1))
    rows = _ledger()
    children = _Children(monkeypatch)

    with assessing.Assessors() as assessors:
        first = _flatten(assessors.assessed(children.chunks([[row] for row in rows]), Assessor(TERMS)))
        second = _flatten(assessors.assessed(iter([[row] for row in rows]), Assessor(later)))

    assert first == Assessor(TERMS).assess(rows)
    assert second == Assessor(later).assess(rows)
    assert second != first  # collected a week later
    assert len(children.made) == assessing.CHILDREN  # started once, for both creditors


def test_a_creditor_left_half_assessed_leaves_no_answer_for_the_next(monkeypatch):
    rows = _ledger()
    children = _Children(monkeypatch)

    with assessing.Assessors() as assessors:
        answers = assessors.assessed(children.chunks([[row] for row in rows]), Assessor(TERMS))
        for _ in range(5):
            next(answers)
        answers.close()  # as when storing a chunk fails
        again = _flatten(assessors.assessed(iter([[row] for row in rows]), Assessor(TERMS)))

    assert again == Assessor(TERMS).assess(rows)


def test_one_chunk_is_assessed_here_without_a_child(monkeypatch):
    def no_child(*_args):
        raise AssertionError("a child was started")

    monkeypatch.setattr(assessing, "_Child", no_child)
    rows = _ledger()

    assert list(_assessed(iter([rows]), Assessor(TERMS))) == [Assessor(TERMS).assess(rows)]
