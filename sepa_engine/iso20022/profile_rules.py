"""A pain.008 file checked against one bank profile's rules, each finding naming its source.

The ISO schema and the scheme's own rules are ``pain008_xsd`` and ``pain008_rules``; this
module adds what one banking community applies on top (``domain/bank_profiles.py``): the
versions it takes and until when, its closing days, the 2009 address subset and the end of
address lines, the non-EEA debtor rules, and its file limits. ``verify --profile P FILE``
runs it on any file through the reader (``check_profile``); the writer's read-back runs the
same ``ProfileCheck`` on every file the collection run writes, from the elements it already
holds, so a written file is parsed once (``readback_profile.py``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import Protocol

from sepa_engine.domain import sepa_countries
from sepa_engine.domain.bank_profiles import (
    ADDRESS_LINES_FORBIDDEN_FROM,
    ADDRESS_LINES_SOURCE,
    BankProfile,
)
from sepa_engine.iso20022 import pain008_reader as reader
from sepa_engine.iso20022.pain008_findings import Finding, Severity

_2009 = "pain.008.001.02"
_MAX_CLEAN = 4096


class ProfileCode:
    """Stable codes of the findings this module makes."""

    VERSION_NOT_ACCEPTED = "version_not_accepted"
    VERSION_NO_LONGER_ACCEPTED = "version_no_longer_accepted"
    BANK_CLOSING_DAY = "bank_closing_day"
    ADDRESS_NOT_EPC_SUBSET = "address_not_epc_subset"
    ADDRESS_LINES_FORBIDDEN = "address_lines_forbidden"
    NON_EEA_BIC_MISSING = "non_eea_debtor_bic_missing"
    NON_EEA_ADDRESS_MISSING = "non_eea_debtor_address_missing"
    NON_EEA_CREDITOR_ADDRESS_MISSING = "non_eea_creditor_address_missing"
    BIC_REQUIRED = "bic_required"
    TOO_MANY_TRANSACTIONS = "too_many_transactions"
    FILE_TOO_LARGE = "file_too_large"


class BlockFields(Protocol):
    """What the rules read of a payment block (``reader.PaymentBlock`` has it all)."""

    @property
    def location(self) -> str: ...
    @property
    def collection_date(self) -> str | None: ...
    @property
    def creditor_address(self) -> reader.PostalAddress | None: ...


class DebtorFields(Protocol):
    """What the rules read of a transaction (``reader.Transaction`` has it all)."""

    @property
    def location(self) -> str: ...
    @property
    def debtor_address(self) -> reader.PostalAddress | None: ...
    @property
    def debtor_iban(self) -> str | None: ...
    @property
    def debtor_bic(self) -> str | None: ...


def check_profile(path: str | os.PathLike[str], bank: BankProfile) -> list[Finding]:
    """Every rule of ``bank`` the file breaks, as error findings; empty when it keeps them all."""
    source = reader.readable_source(path)
    version = reader.detect_version(source).name
    check = ProfileCheck(bank, version)
    check.records(reader.read_records(source))
    # In the order the writer's read-back finds them: the size is known there at the end.
    check.file_size(source.stat().st_size)
    check.finish()
    return check.findings


class ProfileCheck:
    """The rules of one bank profile, fed a file's parts in document order.

    Fed reader records by ``check_profile`` (``verify --profile``), or the few fields the
    rules need by the writer's read-back; either way the same findings.
    """

    def __init__(self, bank: BankProfile, version: str) -> None:
        self.bank = bank
        self.version = version
        self.findings: list[Finding] = []
        self.created: dt.date | None = None
        self.block: BlockFields | None = None
        self.count = 0
        self._clean: set[tuple[object, ...]] = set()

    def add(self, code: str, location: str, field: str, problem: str, rule: str, source: str | None = None) -> None:
        cited = source if source is not None else self.bank.sources.get(rule, "")
        self.findings.append(Finding(
            Severity.ERROR, code, location, field,
            f"{field} {problem} (bank profile {self.bank.code}, rule {rule}: {cited})",
        ))

    def file_size(self, size: int) -> None:
        if self.bank.max_file_bytes is not None and size > self.bank.max_file_bytes:
            self.add(ProfileCode.FILE_TOO_LARGE, reader.DOCUMENT_PATH, "Document",
                     f"file of {size} bytes is larger than the {self.bank.max_file_bytes} bytes the bank takes",
                     "file_limits")

    def records(self, records: Iterable[reader.Record]) -> None:
        for record in records:
            if isinstance(record, reader.GroupHeader):
                self.header(record.created)
            elif isinstance(record, reader.PaymentBlock):
                self.payment_block(record)
            elif isinstance(record, reader.Transaction):
                self.transaction(record)

    def finish(self) -> None:
        limit = self.bank.max_transactions
        if limit is not None and self.count > limit:
            self.add(ProfileCode.TOO_MANY_TRANSACTIONS, reader.DOCUMENT_PATH, "NbOfTxs",
                     f"{self.count} transactions are more than the {limit} the bank takes in one file", "file_limits")

    def header(self, created: str | None) -> None:
        self.created = _date(created)
        location = reader.DOCUMENT_PATH
        if self.version not in self.bank.versions:
            self.add(ProfileCode.VERSION_NOT_ACCEPTED, location, "Document",
                     f"{self.version} is not accepted (accepted: {', '.join(self.bank.versions)})", "versions")
        elif self.created is not None and not self.bank.accepts(self.version, self.created):
            until = self.bank.accepted_until[self.version]
            self.add(ProfileCode.VERSION_NO_LONGER_ACCEPTED, location, "Document",
                     f"{self.version} is no longer accepted since {until + dt.timedelta(days=1)} "
                     f"(file created {self.created})", "accepted_until")

    def payment_block(self, block: BlockFields) -> None:
        self.block = block
        day = _date(block.collection_date)
        if day is not None and self.bank.is_closed(day):
            self.add(ProfileCode.BANK_CLOSING_DAY, f"{block.location}/ReqdColltnDt", "ReqdColltnDt",
                     f"{day} is a day the bank does not process although TARGET is open", "closing_days")
        self.address(block.creditor_address, block, "/Cdtr/PstlAdr", "Cdtr/PstlAdr")
        self._clean.clear()  # the non-EEA rules read the block's creditor address too

    def transaction(self, tx: DebtorFields) -> None:
        self.count += 1
        bic = tx.debtor_bic
        # Everything the rules read of a transaction. Debtors share addresses, banks and
        # countries, so most transactions repeat one already found clean in the block:
        # the rules would find nothing again (a million-transaction file has a handful).
        key = (tx.debtor_address, (tx.debtor_iban or "")[:2], bic[4:6] if bic else None, bool(bic))
        if key in self._clean:
            return
        found = len(self.findings)
        self.address(tx.debtor_address, tx, "/Dbtr/PstlAdr", "Dbtr/PstlAdr")
        country = sepa_countries.non_eea_country(
            tx.debtor_iban, tx.debtor_address.country if tx.debtor_address else None, bic,
        )
        if country is not None:
            self.outside_eea(tx, country)
        elif self.bank.bic_required and not bic:
            self.add(ProfileCode.BIC_REQUIRED, f"{tx.location}/DbtrAgt", "DbtrAgt/FinInstnId",
                     "has no BIC, which the bank requires", "bic_required")
        if len(self.findings) == found and len(self._clean) < _MAX_CLEAN:
            self._clean.add(key)

    def outside_eea(self, tx: DebtorFields, country: str) -> None:
        source = sepa_countries.SOURCE
        where = f"for a debtor in {country}, outside the EEA"
        if not tx.debtor_bic:
            self.add(ProfileCode.NON_EEA_BIC_MISSING, f"{tx.location}/DbtrAgt", "DbtrAgt/FinInstnId",
                     f"has no BIC, required {where} [{sepa_countries.MISSING_BIC_REASON}]", "non_eea", source)
        if not _usable(tx.debtor_address, self.version):
            self.add(ProfileCode.NON_EEA_ADDRESS_MISSING, f"{tx.location}/Dbtr", "Dbtr/PstlAdr",
                     f"is missing or incomplete, required {where} "
                     f"[{sepa_countries.MISSING_DEBTOR_ADDRESS_REASON}]", "non_eea", source)
        if self.block is not None and not _usable(self.block.creditor_address, self.version):
            self.add(ProfileCode.NON_EEA_CREDITOR_ADDRESS_MISSING, f"{self.block.location}/Cdtr", "Cdtr/PstlAdr",
                     f"is missing or incomplete, required when a debtor of the block is in {country} "
                     f"[{sepa_countries.MISSING_CREDITOR_ADDRESS_REASON}]", "non_eea", source)

    def address(
        self, address: reader.PostalAddress | None, owner: BlockFields | DebtorFields, suffix: str, field: str
    ) -> None:
        # The owner's location is built only for a finding: most addresses have none.
        if address is None:
            return
        if self.version == _2009 and (address.street or address.building_number or address.postcode or address.town):
            self.add(ProfileCode.ADDRESS_NOT_EPC_SUBSET, owner.location + suffix, field,
                     "has structured elements; the 2009 subset allows only Ctry and two AdrLine", "address_form")
        if address.lines and not (address.town and address.country) and self._lines_forbidden():
            self.add(ProfileCode.ADDRESS_LINES_FORBIDDEN, owner.location + suffix, field,
                     f"is made of address lines only, refused in every SEPA scheme since {ADDRESS_LINES_FORBIDDEN_FROM}",
                     "address_form", ADDRESS_LINES_SOURCE)

    def _lines_forbidden(self) -> bool:
        return self.created is None or self.created >= ADDRESS_LINES_FORBIDDEN_FROM


def _usable(address: reader.PostalAddress | None, version: str) -> bool:
    """Town and country structured (2019 versions), or country and lines (2009)."""
    if address is None:
        return False
    if version == _2009:
        return bool(address.country and address.lines)
    return bool(address.country and address.town)


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None
