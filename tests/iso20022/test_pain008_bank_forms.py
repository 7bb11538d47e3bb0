"""What the files look like under the banks' rules: the 2009 address subset, ultimate parties
(issue 14, items 1 and 7), checked against the banking communities' own schemas."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from lxml import etree

from sepa_engine.domain.directdebit import FileHeader, PaymentBlock, PostalAddress, UltimateParty
from sepa_engine.iso20022.pain008 import write_pain008
from sepa_engine.iso20022.versions import PAIN_008_001_02, PAIN_008_001_08, load_schema
from tests import shared_files
from tests.factories import CREDITOR, debit, key

BEFORE_LINES_FORBIDDEN = dt.datetime(2026, 11, 13, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
AFTER_LINES_FORBIDDEN = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
ADDRESS = PostalAddress(country="FR", town="Lyon", street="Rue de la Republique", building_number="3", postcode="69002")


def community_schema(relative: str) -> etree.XMLSchema:
    xsd = shared_files.xsd_dir() / relative
    return etree.XMLSchema(etree.parse(str(xsd), parser=etree.XMLParser(resolve_entities=False, no_network=True)))


def _write(version, created, *transactions) -> etree._ElementTree:
    block = PaymentBlock("MSG000001-0001", key(), CREDITOR)
    out = io.BytesIO()
    write_pain008(out, version, FileHeader("MSG000001", created, CREDITOR.name, CREDITOR.creditor_id),
                  [(block, tx) for tx in transactions])
    return etree.parse(io.BytesIO(out.getvalue()))


def _ns(version) -> dict[str, str]:
    return {"p": version.namespace}


def test_001_02_address_is_country_and_two_lines_and_passes_the_german_banks_schema():
    doc = _write(PAIN_008_001_02, BEFORE_LINES_FORBIDDEN, debit(1, debtor_address=ADDRESS))

    address = doc.find(".//p:Dbtr/p:PstlAdr", namespaces=_ns(PAIN_008_001_02))
    assert [child.tag.split("}")[1] for child in address] == ["Ctry", "AdrLine", "AdrLine"]
    assert [line.text for line in address.findall("p:AdrLine", namespaces=_ns(PAIN_008_001_02))] == [
        "Rue de la Republique 3", "69002 Lyon",
    ]
    # The demo's .001.02 files failed this schema on every address before (issue 14, finding 1).
    dk = community_schema("dk/pain.008.001.02.xsd")
    assert dk.validate(doc), dk.error_log
    assert load_schema(PAIN_008_001_02.xsd_name).validate(doc)


def test_001_02_file_made_after_address_lines_were_forbidden_carries_no_address():
    doc = _write(PAIN_008_001_02, AFTER_LINES_FORBIDDEN, debit(1, debtor_address=ADDRESS))

    assert doc.find(".//p:PstlAdr", namespaces=_ns(PAIN_008_001_02)) is None
    dk = community_schema("dk/pain.008.001.02.xsd")
    assert dk.validate(doc), dk.error_log


def test_001_08_keeps_the_structured_address():
    doc = _write(PAIN_008_001_08, AFTER_LINES_FORBIDDEN, debit(1, debtor_address=ADDRESS))

    address = doc.find(".//p:Dbtr/p:PstlAdr", namespaces=_ns(PAIN_008_001_08))
    assert [child.tag.split("}")[1] for child in address] == ["StrtNm", "BldgNb", "PstCd", "TwnNm", "Ctry"]


@pytest.mark.parametrize("version", [PAIN_008_001_08, PAIN_008_001_02], ids=lambda v: v.name)
def test_ultimate_creditor_and_debtor_are_written_with_their_identifiers(version):
    tx = dataclasses.replace(
        debit(1),
        ultimate_creditor=UltimateParty("SCI Les Tilleuls", "SIREN552100554"),
        ultimate_debtor="Jeanne Martin", ultimate_debtor_id="LOC-0042",
    )
    doc = _write(version, AFTER_LINES_FORBIDDEN, tx)

    ns = _ns(version)
    assert doc.findtext(".//p:DrctDbtTxInf/p:UltmtCdtr/p:Nm", namespaces=ns) == "SCI Les Tilleuls"
    assert doc.findtext(".//p:UltmtCdtr/p:Id/p:OrgId/p:Othr/p:Id", namespaces=ns) == "SIREN552100554"
    assert doc.findtext(".//p:UltmtDbtr/p:Nm", namespaces=ns) == "Jeanne Martin"
    assert doc.findtext(".//p:UltmtDbtr/p:Id/p:OrgId/p:Othr/p:Id", namespaces=ns) == "LOC-0042"
    assert load_schema(version.xsd_name).validate(doc)
    if version is PAIN_008_001_02:
        dk = community_schema("dk/pain.008.001.02.xsd")
        assert dk.validate(doc), dk.error_log


@pytest.mark.parametrize("created", [BEFORE_LINES_FORBIDDEN, AFTER_LINES_FORBIDDEN], ids=["lines", "no-address"])
def test_001_02_structure_also_passes_the_german_2013_variant_schema(created):
    # pain.008.003.02 is the DK variant of the same 2009 message under its own namespace: the
    # element structure of our .001.02 files must satisfy it as well. (The EPC .002.02
    # variant predates IBAN-only and requires a BIC, so it is not a target any more.)
    tx = dataclasses.replace(debit(2, debtor_address=ADDRESS), debtor_bic="COBADEFFXXX")
    doc = _write(PAIN_008_001_02, created, debit(1, debtor_address=ADDRESS), tx)
    swapped = etree.tostring(doc).replace(b"pain.008.001.02", b"pain.008.003.02")
    variant = community_schema("pain.008.003.02.xsd")
    assert variant.validate(etree.fromstring(swapped)), variant.error_log
