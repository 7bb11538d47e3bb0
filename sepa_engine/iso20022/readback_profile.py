"""A bank profile's rules checked by the writer's read-back, on the elements it already holds.

The read-back (``readback.py``) parses every written file once, against the XSD and the
control sums. Reading the file again through ``pain008_reader`` for the bank profile's rules
(``profile_rules``) cost as much as writing it: a second parse, and a record of some twenty
fields built per transaction. Here the same ``ProfileCheck`` is fed from the read-back's
elements, and only the fields its rules read are taken: the file's creation date, each
block's collection date and creditor address, each transaction's debtor address, IBAN and
BIC. The XSD has already fixed where each of them stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sepa_engine.domain.bank_profiles import BankProfile
from sepa_engine.iso20022 import pain008_reader as reader
from sepa_engine.iso20022.pain008_findings import Finding
from sepa_engine.iso20022.profile_rules import ProfileCheck
from sepa_engine.iso20022.versions import Pain008Version

# PstlAdr children the rules read, in PostalAddress's field order (lines apart).
_ADDRESS_FIELDS = ("Ctry", "TwnNm", "StrtNm", "BldgNb", "PstCd")
_MAX_ADDRESSES = 65536


@dataclass(frozen=True, slots=True)
class _Block:
    index: int
    collection_date: str | None
    creditor_address: reader.PostalAddress | None

    @property
    def location(self) -> str:
        return reader.block_path(self.index)


@dataclass(frozen=True, slots=True)
class _Debtor:
    block: int
    index: int
    debtor_address: reader.PostalAddress | None
    debtor_iban: str | None
    debtor_bic: str | None

    @property
    def location(self) -> str:
        return reader.transaction_path(self.block, self.index)


class ProfileReadBack:
    """Feeds ``ProfileCheck`` from the read-back's group header, blocks and transactions."""

    def __init__(self, bank: BankProfile, pain008: Pain008Version) -> None:
        self.check = ProfileCheck(bank, pain008.name)
        ns = "{" + pain008.namespace + "}"
        self._cut = len(ns)
        self._dbtr, self._dbtr_acct, self._dbtr_agt = ns + "Dbtr", ns + "DbtrAcct", ns + "DbtrAgt"
        self._pstl_adr, self._cdtr = ns + "PstlAdr", ns + "Cdtr"
        self._date, self._date_choice = ns + "ReqdColltnDt", ns + "Dt"
        self._bic, self._iban, self._adr_line = ns + pain008.bic_tag, ns + "IBAN", ns + "AdrLine"
        self._address_slot = {ns + name: n for n, name in enumerate(_ADDRESS_FIELDS)}
        self._addresses: dict[tuple[object, ...], reader.PostalAddress] = {}
        self._blocks = 0

    @property
    def findings(self) -> list[Finding]:
        return self.check.findings

    def header(self, element: etree._Element) -> None:
        self.check.header(element[1].text if len(element) > 1 else None)  # CreDtTm, second by the XSD

    def block(self, element: etree._Element, transaction_tag: str) -> None:
        """The block's header fields, which stand before its first transaction."""
        self._blocks += 1
        collection_date = creditor_address = None
        for child in element:
            tag = child.tag
            if tag == transaction_tag:
                break
            if tag == self._date:
                # Later ISO versions wrap the date in a choice (Dt / DtTm).
                collection_date = child.text if len(child) == 0 else child.findtext(self._date_choice)
            elif tag == self._cdtr:
                creditor_address = self._address_in(child)
        self.check.payment_block(_Block(self._blocks, collection_date, creditor_address))

    def transaction(self, element: etree._Element, index: int) -> None:
        # Dbtr, DbtrAcct and DbtrAgt stand in the second half of DrctDbtTxInf, DbtrAgt first:
        # walking back from the end reaches them in a few steps.
        address = iban = bic = None
        for child in element.iterchildren(reversed=True):
            tag = child.tag
            # libxml2 may report an XSD violation only after this runs: index defensively.
            if tag == self._dbtr_acct:
                account = _first_grandchild(child)  # Id/IBAN or Id/Othr
                iban = account.text if account is not None and account.tag == self._iban else None
            elif tag == self._dbtr:
                address = self._address_in(child)
            elif tag == self._dbtr_agt:
                first = _first_grandchild(child)  # FinInstnId/BIC(FI) or FinInstnId/Othr
                bic = first.text if first is not None and first.tag == self._bic else None
                break
        self.check.transaction(_Debtor(self._blocks, index, address, iban, bic))

    def finish(self, size: int) -> list[Finding]:
        self.check.file_size(size)
        self.check.finish()
        return self.check.findings

    def _address_in(self, party: etree._Element) -> reader.PostalAddress | None:
        for child in party:
            if child.tag == self._pstl_adr:
                return self._address(child)
        return None

    def _address(self, element: etree._Element) -> reader.PostalAddress:
        values: list[str | None] = [None] * len(_ADDRESS_FIELDS)
        lines: list[str] = []
        slot = self._address_slot.get
        for child in element:
            if child.tag == self._adr_line:
                lines.append(child.text or "")
            else:
                n = slot(child.tag)
                if n is not None:
                    values[n] = child.text
        key = (*values, tuple(lines))
        address = self._addresses.get(key)
        if address is None:
            # One object per distinct address, like the reader: debtors share addresses.
            if len(self._addresses) >= _MAX_ADDRESSES:
                self._addresses.clear()
            address = self._addresses[key] = reader.PostalAddress(*key)  # type: ignore[arg-type]
        return address


def _first_grandchild(element: etree._Element) -> etree._Element | None:
    if len(element) and len(element[0]):
        return element[0][0]
    return None
