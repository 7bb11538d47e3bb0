"""Our writer against sepaxml, a widely used peer, on the same batches.

Both files are parsed back and compared transaction by transaction. Where the two differ
by design the test names the difference instead of hiding it:
- sepaxml never writes AmdmntInd or AmdmntInfDtls, so an amended mandate reaches the bank
  looking unchanged (the debtor bank may then reject it, typically with MD02).
"""

from __future__ import annotations

import copy
import datetime as dt
import io

import pytest
from lxml import etree
from sepaxml import SepaDD

from sepa_engine.domain.directdebit import FileHeader, PaymentBlock, SequenceType
from sepa_engine.iso20022.pain008 import write_pain008
from sepa_engine.iso20022.versions import PAIN_008_001_02, PAIN_008_001_08
from tests.factories import AMENDED, CREDITOR, debit, key

CREATED = dt.datetime(2026, 11, 23, 10, 15, tzinfo=dt.timezone.utc)


def _batches():
    frst = PaymentBlock("OURS-0001", key(sequence_type=SequenceType.FIRST, collection_date=dt.date(2026, 11, 26)), CREDITOR)
    rcur = PaymentBlock("OURS-0002", key(sequence_type=SequenceType.RECURRING, collection_date=dt.date(2026, 11, 27)), CREDITOR)
    return [
        (frst, debit(1, 10, debtor_bic="COBADEFFXXX")),
        (frst, debit(2, 1_999, debtor_bic="ABNANL2AXXX")),
        (rcur, debit(3, 123_456, debtor_bic="GKCCBEBBXXX", amendment=AMENDED)),
        (rcur, debit(4, 20, debtor_bic="CAIXESBBXXX")),
    ]


def _sepaxml(version_name: str, entries) -> bytes:
    config = {
        "name": CREDITOR.name,
        "IBAN": CREDITOR.iban,
        "BIC": CREDITOR.bic,
        "batch": True,
        "creditor_id": CREDITOR.creditor_id,
        "currency": "EUR",
        "instrument": "CORE",
    }
    sepa = SepaDD(config, schema=version_name, clean=True)
    for block, tx in entries:
        sepa.add_payment(
            {
                "name": tx.debtor_name,
                "IBAN": tx.debtor_iban,
                "BIC": tx.debtor_bic,
                "amount": tx.amount_cents,
                "type": block.key.sequence_type.value,
                "collection_date": block.key.collection_date,
                "mandate_id": tx.mandate_id,
                "mandate_date": tx.mandate_signed_on,
                "description": tx.remittance,
                "endtoend_id": tx.end_to_end_id,
            }
        )
    return sepa.export(validate=True)


def _ours(version, entries) -> bytes:
    out = io.BytesIO()
    write_pain008(out, version, FileHeader("OURS", CREATED, CREDITOR.name, CREDITOR.creditor_id), entries)
    return out.getvalue()


def _transactions(data: bytes) -> dict[str, dict[str, str | None]]:
    doc = etree.fromstring(data)
    ns = {"p": etree.QName(doc).namespace}
    found: dict[str, dict[str, str | None]] = {}
    for block in doc.iterfind(".//p:PmtInf", ns):
        for tx in block.iterfind("p:DrctDbtTxInf", ns):
            e2e = tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns)
            found[e2e] = {
                "sequence_type": block.findtext("p:PmtTpInf/p:SeqTp", namespaces=ns),
                "collection_date": block.findtext("p:ReqdColltnDt", namespaces=ns),
                "creditor_id": block.findtext(".//p:CdtrSchmeId//p:Othr/p:Id", namespaces=ns),
                "amount": tx.findtext("p:InstdAmt", namespaces=ns),
                "currency": tx.find("p:InstdAmt", ns).get("Ccy"),
                "mandate_id": tx.findtext(".//p:MndtId", namespaces=ns),
                "signed_on": tx.findtext(".//p:DtOfSgntr", namespaces=ns),
                "amended": tx.findtext(".//p:AmdmntInd", namespaces=ns),
                "debtor_iban": tx.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=ns),
                "debtor_name": tx.findtext("p:Dbtr/p:Nm", namespaces=ns),
                "remittance": tx.findtext("p:RmtInf/p:Ustrd", namespaces=ns),
            }
    return found


@pytest.mark.parametrize("version", [PAIN_008_001_08, PAIN_008_001_02], ids=lambda v: v.name)
def test_transactions_match_sepaxml_except_for_the_amendment_it_cannot_express(version):
    entries = _batches()
    ours = _transactions(_ours(version, entries))
    theirs = _transactions(_sepaxml(version.name, copy.deepcopy(entries)))

    assert ours.keys() == theirs.keys() == {"E2E-00000001", "E2E-00000002", "E2E-00000003", "E2E-00000004"}
    for e2e in ours:
        mine, peer = dict(ours[e2e]), dict(theirs[e2e])
        # sepaxml leaves AmdmntInd out even for the amended mandate; we set it there.
        assert peer.pop("amended") is None
        assert mine.pop("amended") == ("true" if e2e == "E2E-00000003" else None)
        assert mine == peer, e2e


@pytest.mark.parametrize("version", [PAIN_008_001_08, PAIN_008_001_02], ids=lambda v: v.name)
def test_group_totals_match_sepaxml(version):
    entries = _batches()
    ours = etree.fromstring(_ours(version, entries))
    theirs = etree.fromstring(_sepaxml(version.name, copy.deepcopy(entries)))
    ns = {"p": version.namespace}
    for path in ("p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs", "p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum"):
        assert ours.findtext(path, namespaces=ns) == theirs.findtext(path, namespaces=ns)


def test_sepaxml_drops_the_amendment_details_we_carry():
    entries = _batches()
    ours = _ours(PAIN_008_001_08, entries)
    theirs = _sepaxml(PAIN_008_001_08.name, copy.deepcopy(entries))
    assert b"<OrgnlMndtId>OLD-RUM-1</OrgnlMndtId>" in ours
    assert b"OrgnlMndtId" not in theirs and b"AmdmntInd" not in theirs
