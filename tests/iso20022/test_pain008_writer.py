from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
from pathlib import Path

import pytest
from lxml import etree

from sepa_engine import errors
from sepa_engine.domain.batching import plan_files
from sepa_engine.domain.directdebit import FileHeader, PaymentBlock, SequenceType
from sepa_engine.ids import SequentialIds
from sepa_engine.iso20022 import pain008, readback
from sepa_engine.iso20022.pain008 import write_pain008
from sepa_engine.iso20022.versions import PAIN_008_001_02, PAIN_008_001_08, load_schema
from tests.factories import AMENDED, CREDITOR, OTHER_CREDITOR, SMNDA, collectible, debit, key

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.008"
CREATED = dt.datetime(2026, 11, 23, 10, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
VERSIONS = [PAIN_008_001_08, PAIN_008_001_02]


def _header(message_id: str = "MSG000001") -> FileHeader:
    return FileHeader(message_id, CREATED, CREDITOR.name, CREDITOR.creditor_id)


def _block(n: int = 1, **key_overrides: object) -> PaymentBlock:
    return PaymentBlock(f"MSG000001-{n:04d}", key(**key_overrides), CREDITOR)  # type: ignore[arg-type]


def _write(version, entries, header=None) -> tuple[bytes, object]:
    out = io.BytesIO()
    written = write_pain008(out, version, header or _header(), entries)
    return out.getvalue(), written


def _scenario_entries():
    """Two blocks (FRST and RCUR), an amendment, an SMNDA, an apostrophe, a debtor with a BIC."""
    frst = _block(1, sequence_type=SequenceType.FIRST)
    rcur = _block(2, sequence_type=SequenceType.RECURRING)
    return [
        (frst, debit(1, 10, remittance="Facture F-2026-001 d'octobre")),
        (frst, debit(2, 20, amendment=AMENDED, debtor_bic="COBADEFFXXX")),
        (rcur, debit(3, 99_999_999_999, amendment=SMNDA, debtor_address=None, remittance=None)),
        (rcur, debit(4, 1, instruction_id="INSTR-4", ultimate_debtor="SCI Les Tilleuls")),
    ]


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_same_input_gives_the_same_bytes_as_the_golden_file(version):
    data, _ = _write(version, _scenario_entries())
    golden = TESTDATA / f"{version.name}-two-blocks-amendments.xml"
    if os.environ.get("SEPA_ENGINE_UPDATE_GOLDEN"):
        golden.write_bytes(data)
    assert data == golden.read_bytes()


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_written_file_is_valid_against_the_official_xsd(version):
    data, _ = _write(version, _scenario_entries())
    schema = load_schema(version.xsd_name)
    assert schema.validate(etree.fromstring(data)), schema.error_log


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_counts_and_control_sums_are_exact_in_cents(version):
    # 0.10 + 0.20 is where floating point goes wrong (0.30000000000000004).
    entries = [(_block(1), debit(1, 10)), (_block(1), debit(2, 20)), (_block(2, sequence_type=SequenceType.FIRST), debit(3, 99_999_999_999))]
    data, written = _write(version, entries)
    doc = etree.fromstring(data)
    ns = {"p": version.namespace}
    assert doc.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs", namespaces=ns) == "3"
    assert doc.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum", namespaces=ns) == "1000000000.29"
    block_sums = [e.text for e in doc.iterfind("p:CstmrDrctDbtInitn/p:PmtInf/p:CtrlSum", namespaces=ns)]
    assert block_sums == ["0.30", "999999999.99"]
    assert (written.count, written.sum_cents) == (3, 100_000_000_029)
    assert [(b.count, b.sum_cents) for b in written.blocks] == [(2, 30), (1, 99_999_999_999)]


def test_version_differences_show_in_bic_tag_and_smnda_placement():
    entries = [(_block(1), debit(1, debtor_bic="COBADEFFXXX", amendment=SMNDA))]
    v08, _ = _write(PAIN_008_001_08, entries)
    v02, _ = _write(PAIN_008_001_02, entries)
    assert b"<BICFI>COBADEFFXXX</BICFI>" in v08 and b"<BIC>" not in v08
    assert b"<BIC>COBADEFFXXX</BIC>" in v02 and b"<BICFI>" not in v02
    for data in (v08, v02):
        assert b"<OrgnlDbtrAcct><Id><Othr><Id>SMNDA</Id></Othr></Id></OrgnlDbtrAcct>" in data


def test_amendment_carries_original_mandate_and_creditor_and_sets_the_indicator():
    data, _ = _write(PAIN_008_001_08, [(_block(1), debit(1, amendment=AMENDED)), (_block(1), debit(2))])
    doc = etree.fromstring(data)
    ns = {"p": PAIN_008_001_08.namespace}
    infos = doc.findall(".//p:MndtRltdInf", namespaces=ns)
    # Absent means "not amended" (ISO default); only amended mandates carry the indicator.
    assert [i.findtext("p:AmdmntInd", namespaces=ns) for i in infos] == ["true", None]
    assert infos[0].findtext("p:AmdmntInfDtls/p:OrgnlMndtId", namespaces=ns) == "OLD-RUM-1"
    assert infos[0].findtext("p:AmdmntInfDtls/p:OrgnlCdtrSchmeId/p:Nm", namespaces=ns) == "Ancien Nom"


def test_changed_iban_at_the_same_bank_carries_the_original_account():
    amendment = dataclasses.replace(AMENDED, original_mandate_id=None, original_creditor_id=None,
                                    original_creditor_name=None, original_debtor_iban="DE02120300000000202051")
    data, _ = _write(PAIN_008_001_08, [(_block(1), debit(1, amendment=amendment))])
    assert b"<OrgnlDbtrAcct><Id><IBAN>DE02120300000000202051</IBAN></Id></OrgnlDbtrAcct>" in data


def test_missing_bic_is_written_as_not_provided():
    data, _ = _write(PAIN_008_001_02, [(_block(1), debit(1, debtor_bic=None))])
    assert b"<DbtrAgt><FinInstnId><Othr><Id>NOTPROVIDED</Id></Othr></FinInstnId></DbtrAgt>" in data


def test_apostrophe_is_written_as_an_entity():
    data, _ = _write(PAIN_008_001_08, [(_block(1), debit(1, remittance="Loyer d'octobre"))])
    assert b"Loyer d&apos;octobre" in data


def test_file_that_breaks_the_xsd_raises_naming_the_element_and_rule():
    with pytest.raises(errors.SchemaViolation) as caught:
        _write(PAIN_008_001_08, [(_block(1), debit(1, debtor_bic="NOT A BIC"))])
    assert caught.value.field == "BICFI"
    assert "pattern" in caught.value.rule


def test_duplicate_end_to_end_id_in_one_file_is_refused():
    entries = [(_block(1), debit(n, end_to_end_id="SAME-ID")) for n in range(3)]
    with pytest.raises(errors.DuplicateIdentifier) as caught:
        _write(PAIN_008_001_08, entries)
    assert caught.value.field == "EndToEndId"
    assert caught.value.value == "SAME-ID"
    assert "3 times" in str(caught.value)


def test_many_distinct_end_to_end_ids_raise_no_false_alarm():
    entries = ((_block(1), debit(n)) for n in range(20_000))
    _, written = _write(PAIN_008_001_08, entries)
    assert written.count == 20_000


def test_payment_block_that_reappears_after_another_is_refused():
    entries = [(_block(1), debit(1)), (_block(2), debit(2)), (_block(1), debit(3))]
    with pytest.raises(errors.DuplicateIdentifier, match="grouped by block"):
        _write(PAIN_008_001_08, entries)


def test_file_without_transactions_is_refused():
    with pytest.raises(errors.CollectionError, match="no transactions"):
        _write(PAIN_008_001_08, [])


def test_writer_consumes_a_generator_lazily():
    pulled: list[int] = []

    def source():
        for n in range(5_000):
            pulled.append(n)
            yield _block(1), debit(n)

    _, written = _write(PAIN_008_001_08, source())
    assert written.count == 5_000 and len(pulled) == 5_000


def test_planned_files_from_batching_are_written_valid_one_per_creditor():
    items = sorted([collectible(n, CREDITOR) for n in range(3)] + [collectible(9, OTHER_CREDITOR)], key=lambda c: c.key)
    outputs = []
    for planned in plan_files(items, max_per_file=100, ids=SequentialIds(), created_at=CREATED):
        outputs.append(_write(PAIN_008_001_08, planned.entries, planned.header)[1])
    assert sorted(w.count for w in outputs) == [1, 3]
    assert len({w.message_id for w in outputs}) == 2


def test_sha256_and_size_describe_the_bytes_written():
    import hashlib

    data, written = _write(PAIN_008_001_08, [(_block(1), debit(1))])
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.size == len(data)


# --- planned mode: totals known up front, one pass, large files validated in a child -----

from sepa_engine.iso20022.pain008 import CHILD_VALIDATION_FROM, BlockPlan  # noqa: E402


def _plan_for(entries):
    plan: dict[str, list] = {}
    for block, tx in entries:
        entry = plan.setdefault(block.payment_info_id, [block, 0, 0])
        entry[1] += 1
        entry[2] += tx.amount_cents
    return [BlockPlan(b, c, s) for b, c, s in plan.values()]


def _write_planned(version, entries, plan):
    out = io.BytesIO()
    written = write_pain008(out, version, _header(), entries, plan=plan)
    return out.getvalue(), written


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_planned_and_spooled_modes_write_the_same_bytes(version):
    entries = _scenario_entries()
    planned, _ = _write_planned(version, entries, _plan_for(entries))
    spooled, _ = _write(version, entries)
    assert planned == spooled


def test_stream_that_does_not_add_up_to_its_plan_is_refused():
    entries = [(_block(1), debit(1, 100)), (_block(1), debit(2, 200))]
    plan = [BlockPlan(_block(1), 2, 301)]
    with pytest.raises(errors.ControlSumMismatch) as caught:
        _write_planned(PAIN_008_001_08, entries, plan)
    assert "3.01" in str(caught.value) and "3.00" in str(caught.value)


def test_stream_with_fewer_blocks_than_planned_is_refused():
    entries = [(_block(1), debit(1, 100))]
    plan = [BlockPlan(_block(1), 1, 100), BlockPlan(_block(2), 1, 100)]
    with pytest.raises(errors.ControlSumMismatch, match="2 blocks"):
        _write_planned(PAIN_008_001_08, entries, plan)


def test_blocks_out_of_plan_order_are_refused():
    entries = [(_block(2), debit(1, 100)), (_block(1), debit(2, 100))]
    plan = [BlockPlan(_block(1), 1, 100), BlockPlan(_block(2), 1, 100)]
    with pytest.raises(errors.CollectionError, match="next block of the plan"):
        _write_planned(PAIN_008_001_08, entries, plan)


def _large(bad_last_bic: str | None = None, duplicate_last: bool = False):
    n = CHILD_VALIDATION_FROM + 10
    entries = [(_block(1), debit(i, 100 + i)) for i in range(n)]
    if bad_last_bic:
        entries[-1] = (_block(1), debit(n, 100, debtor_bic=bad_last_bic))
    if duplicate_last:
        entries[-1] = (_block(1), debit(n, 100, end_to_end_id=entries[0][1].end_to_end_id))
    return entries


def test_large_planned_file_is_validated_in_a_child_process_and_matches_spooled():
    entries = _large()
    planned, written = _write_planned(PAIN_008_001_08, entries, _plan_for(entries))
    spooled, _ = _write(PAIN_008_001_08, entries)
    assert planned == spooled
    assert written.count == len(entries)


def test_xsd_violation_found_by_the_child_process_reaches_the_caller_with_element_and_rule():
    entries = _large(bad_last_bic="NOT A BIC")
    with pytest.raises(errors.SchemaViolation) as caught:
        _write_planned(PAIN_008_001_08, entries, _plan_for(entries))
    assert caught.value.field == "BICFI"
    assert "pattern" in caught.value.rule


def test_duplicate_end_to_end_id_in_a_large_planned_file_is_refused():
    entries = _large(duplicate_last=True)
    with pytest.raises(errors.DuplicateIdentifier, match="2 times"):
        _write_planned(PAIN_008_001_08, entries, _plan_for(entries))


def _dealt(monkeypatch, pattern: str) -> list[bool]:
    """Large files' pieces dealt between the child and this process by ``pattern`` (c or h)
    instead of by how far behind the child is; returns who took each piece (True: here)."""
    taken: list[bool] = []

    def here_takes(self, data: bytes) -> bool:
        taken.append(pattern[len(taken) % len(pattern)] == "h")
        return taken[-1]

    monkeypatch.setattr(readback.SplitReadBack, "_here_takes", here_takes)
    return taken


@pytest.mark.parametrize("pattern", ["c", "ch", "chhh"])
@pytest.mark.parametrize("plan", [True, False], ids=["planned", "spooled"])
def test_a_large_file_read_back_on_both_cores_is_the_same_file_and_passes(monkeypatch, pattern, plan):
    entries = [(_block(1 + i // 2_000), debit(i, 100 + i)) for i in range(CHILD_VALIDATION_FROM + 10)]
    write = (lambda: _write_planned(PAIN_008_001_08, entries, _plan_for(entries))) if plan else (lambda: _write(PAIN_008_001_08, entries))
    taken = _dealt(monkeypatch, pattern)
    data, written = write()
    monkeypatch.undo()
    monkeypatch.setattr(pain008, "CHILD_VALIDATION_FROM", 10**9)  # one reader, in this process
    whole, _ = write()
    assert data == whole
    assert written.count == len(entries) and len(written.blocks) == 3
    assert len(taken) > 10 and (True in taken) == ("h" in pattern)


@pytest.mark.parametrize("pattern", ["cccch", "hhhhc"])
@pytest.mark.parametrize("plan", [True, False], ids=["planned", "spooled"])
def test_an_xsd_violation_in_a_large_file_is_found_by_whichever_side_reads_it(monkeypatch, pattern, plan):
    entries = _large(bad_last_bic="NOT A BIC")
    _dealt(monkeypatch, pattern)
    with pytest.raises(errors.SchemaViolation) as caught:
        if plan:
            _write_planned(PAIN_008_001_08, entries, _plan_for(entries))
        else:
            _write(PAIN_008_001_08, entries)
    assert caught.value.field == "BICFI" and "pattern" in caught.value.rule


def test_a_duplicate_among_the_ids_after_the_last_full_batch_of_the_filter_is_refused():
    # Regression: the Bloom filter probes ids 8,192 at a time; the check must probe the
    # ids still pending, or a duplicate among the last few would pass.
    n = 8192 + 6
    entries = [(_block(1), debit(i, 100 + i)) for i in range(n)]
    entries[-1] = (_block(1), debit(n, 100, end_to_end_id=entries[-3][1].end_to_end_id))
    with pytest.raises(errors.DuplicateIdentifier, match="2 times"):
        _write(PAIN_008_001_08, entries)


def test_a_duplicate_spread_over_two_batches_of_the_filter_is_refused():
    n = 8192 + 6
    entries = [(_block(1), debit(i, 100 + i)) for i in range(n)]
    entries[-1] = (_block(1), debit(n, 100, end_to_end_id=entries[5][1].end_to_end_id))
    with pytest.raises(errors.DuplicateIdentifier, match="2 times"):
        _write(PAIN_008_001_08, entries)


class _FailingFile(io.BytesIO):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self._fail_after = fail_after

    def write(self, data) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self._fail_after:
            raise OSError(28, "No space left on device")
        return super().write(data)


@pytest.mark.parametrize("fail_after", [10, 200_000])
def test_a_write_failure_of_the_spooled_writer_reaches_the_caller(fail_after):
    # Early (the header) or late (copying the spool): the error propagates, nothing is swallowed.
    entries = [(_block(1), debit(i, 100 + i)) for i in range(2000)]
    with pytest.raises(OSError, match="No space left"):
        write_pain008(_FailingFile(fail_after), PAIN_008_001_08, _header(), entries)


# --- the common transaction's fast path spells what the general one does ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sepa_engine.domain.directdebit import DirectDebit, PostalAddress, UltimateParty  # noqa: E402
from sepa_engine.iso20022.pain008 import _Renderer  # noqa: E402

# Text with the five XML specials, SEPA letters and anything else Unicode has.
_TEXT = st.text(alphabet=st.one_of(st.sampled_from("&<>\"' aZ09-/?:().,+"), st.characters()), max_size=12)
_ADDRESSES = st.one_of(
    st.none(),
    st.builds(PostalAddress, country=st.just("FR"), town=_TEXT, street=st.none() | _TEXT, postcode=st.none() | _TEXT),
)
_DEBITS = st.builds(
    DirectDebit,
    end_to_end_id=_TEXT,
    amount_cents=st.integers(min_value=0, max_value=10**13),
    mandate_id=_TEXT,
    mandate_signed_on=st.dates(),
    debtor_name=_TEXT,
    debtor_iban=st.sampled_from(["DE89370400440532013000", "FR7630006000011234567890189"]),
    debtor_bic=st.none() | st.sampled_from(["", "COBADEFFXXX", "AGRIFRPP"]),
    debtor_address=_ADDRESSES,
    remittance=st.none() | _TEXT,
    instruction_id=st.none() | _TEXT,
    amendment=st.none() | st.just(AMENDED),
    ultimate_debtor=st.none() | _TEXT,
    ultimate_creditor=st.none() | st.builds(UltimateParty, name=_TEXT),
)


@settings(max_examples=300, deadline=None)
@given(debits=st.lists(_DEBITS, min_size=1, max_size=4), version=st.sampled_from(VERSIONS))
def test_the_fast_path_of_a_transaction_writes_the_same_text_as_the_general_one(debits, version):
    renderer = _Renderer(version, CREATED.date())
    # In a row, so that the remembered debtor address is exercised across debits too.
    for tx in debits + [dataclasses.replace(tx, end_to_end_id=tx.end_to_end_id + "x") for tx in debits]:
        assert renderer.transaction(tx) == renderer.full_transaction(tx)


@pytest.mark.parametrize("amount", [-1, True, 1.5])
def test_an_amount_that_is_not_cents_is_refused_on_the_fast_path_too(amount):
    renderer = _Renderer(PAIN_008_001_08, CREATED.date())
    with pytest.raises(errors.InvalidAmount):
        renderer.transaction(debit(1, amount))
