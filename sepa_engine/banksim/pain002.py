"""Text of the pain.002 status report, the only place its tags are spelt.

Two versions, each paired with the pain.008 edition it answers and validated against the
one schema we hold for it (../shared/iso20022/SOURCES.md):

* pain.002.001.10 (ISO 20022 2019 edition, the ISO original XSD of 2019-02-14) answers
  pain.008.001.08 files. Its GrpSts and PmtInfSts are ExternalPaymentGroupStatus1Code,
  so the report says ACCP (nothing rejected), PART (some transactions rejected) or RJCT
  (all of them) on the group and on each block: an all-accepted answer acknowledges the
  file.
* pain.002.001.03 (2009 edition) answers pain.008.001.02 files. The only schema of it we
  have is the German DK subset (DFÜ-Abkommen Anlage 3 v3.0, 2016), whose
  TransactionGroupStatusCodeSEPA knows one code, RJCT. ACCP and PART are therefore written
  as no GrpSts at all, and RJCT only on a group or block whose every transaction was
  rejected: we do not write what the schema we validate against refuses.

Each rejected transaction is listed with its reason code and its original references
either way, so a reader never has to expand a group status to learn the reasons. Reasons
are codes only (the DK subset has no AddtlInf).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sepa_engine.banksim import text
from sepa_engine.banksim.facts import BlockFacts
from sepa_engine.banksim.text import x
from sepa_engine.domain.money import format_cents
from sepa_engine.iso20022.pain008_reader import Transaction, parse_date

# Repeated elements the validating sink prunes.
PRUNED = ("TxInfAndSts", "OrgnlPmtInfAndSts")
ACCEPTED = "ACCP"
PARTLY_ACCEPTED = "PART"
REJECTED = "RJCT"


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the pain.002 versions the bank writes."""

    message: str
    # FinInstnId/BIC (2009) became FinInstnId/BICFI (2019).
    bic_tag: str
    # Dbtr/Nm (2009) became Dbtr/Pty/Nm (2019, Party40Choice); Cdtr likewise.
    party_wrapped: bool
    # Whether the schema takes ACCP and PART, not only RJCT.
    all_group_statuses: bool

    @property
    def namespace(self) -> str:
        return f"urn:iso:std:iso:20022:tech:xsd:{self.message}"

    @property
    def xsd(self) -> str:
        return f"{self.message}.xsd"

    def status(self, count: int, rejected: int) -> str | None:
        """GrpSts/PmtInfSts for ``rejected`` of ``count`` transactions, or None to leave it out."""
        if count and rejected == count:
            return REJECTED
        if not self.all_group_statuses:
            return None
        return PARTLY_ACCEPTED if rejected else ACCEPTED


DK_2009 = Dialect("pain.002.001.03", "BIC", party_wrapped=False, all_group_statuses=False)
ISO_2019 = Dialect("pain.002.001.10", "BICFI", party_wrapped=True, all_group_statuses=True)
DIALECTS = (DK_2009, ISO_2019)


def for_pain008(version: str) -> Dialect:
    """The status report a bank sends for a pain.008 of ``version``: same ISO edition."""
    return ISO_2019 if version.startswith("pain.008.001.") and version >= "pain.008.001.08" else DK_2009
_NAME_MAX = 70
_REMITTANCE_MAX = 140


@dataclass(frozen=True, slots=True)
class ReportHeader:
    message_id: str
    created: dt.datetime
    creditor_agent_bic: str | None
    original_message_id: str
    original_message_name: str
    count: int
    sum_cents: int
    rejected_count: int


def document_start(dialect: Dialect, header: ReportHeader) -> str:
    agent = f"<CdtrAgt>{_agent(dialect, header.creditor_agent_bic)}</CdtrAgt>\n" if header.creditor_agent_bic else ""
    code = dialect.status(header.count, header.rejected_count)
    status = f"<GrpSts>{code}</GrpSts>\n" if code else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{dialect.namespace}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "<CstmrPmtStsRpt>\n"
        "<GrpHdr>\n"
        f"<MsgId>{header.message_id}</MsgId>\n"
        f"<CreDtTm>{text.date_time_text(header.created)}</CreDtTm>\n"
        f"{agent}"
        "</GrpHdr>\n"
        "<OrgnlGrpInfAndSts>\n"
        f"<OrgnlMsgId>{x(header.original_message_id)}</OrgnlMsgId>\n"
        f"<OrgnlMsgNmId>{header.original_message_name}</OrgnlMsgNmId>\n"
        f"<OrgnlNbOfTxs>{header.count}</OrgnlNbOfTxs>\n"
        f"<OrgnlCtrlSum>{format_cents(header.sum_cents)}</OrgnlCtrlSum>\n"
        f"{status}"
        "</OrgnlGrpInfAndSts>\n"
    )


def document_end() -> str:
    return "</CstmrPmtStsRpt>\n</Document>\n"


def block_start(dialect: Dialect, block: BlockFacts, count: int, sum_cents: int, rejected: int) -> str:
    code = dialect.status(count, rejected)
    status = f"<PmtInfSts>{code}</PmtInfSts>\n" if code else ""
    return (
        "<OrgnlPmtInfAndSts>\n"
        f"<OrgnlPmtInfId>{x(block.payment_info_id)}</OrgnlPmtInfId>\n"
        f"<OrgnlNbOfTxs>{count}</OrgnlNbOfTxs>\n"
        f"<OrgnlCtrlSum>{format_cents(sum_cents)}</OrgnlCtrlSum>\n"
        f"{status}"
    )


def block_end() -> str:
    return "</OrgnlPmtInfAndSts>\n"


class BlockReferences:
    """The parts of OrgnlTxRef every transaction of one block shares, rendered once."""

    def __init__(self, dialect: Dialect, block: BlockFacts) -> None:
        self.dialect = dialect
        self.collection_date = f"<ReqdColltnDt>{text.date_text(block.collection_date)}</ReqdColltnDt>"
        self.creditor_id = block.creditor_id
        self.payment_type = _payment_type(block)
        creditor_name = text.shortened(block.creditor_name, _NAME_MAX)
        self.creditor = (
            (f"<CdtrAgt>{_agent(dialect, block.creditor_bic)}</CdtrAgt>" if block.creditor_bic else "")
            + (f"<Cdtr>{_party(dialect, creditor_name)}</Cdtr>" if creditor_name else "")
            + f"<CdtrAcct><Id><IBAN>{block.creditor_iban}</IBAN></Id></CdtrAcct>"
        )


def rejection(refs: BlockReferences, tx: Transaction, end_to_end_id: str, amount_cents: int, status_id: str, code: str) -> str:
    instruction = f"<OrgnlInstrId>{x(tx.instruction_id)}</OrgnlInstrId>" if text.fits(tx.instruction_id, 35) else ""
    return (
        f"<TxInfAndSts><StsId>{status_id}</StsId>{instruction}"
        f"<OrgnlEndToEndId>{x(end_to_end_id)}</OrgnlEndToEndId>"
        f"<TxSts>{REJECTED}</TxSts><StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>"
        f"{_original_reference(refs, tx, amount_cents)}</TxInfAndSts>\n"
    )


def _original_reference(refs: BlockReferences, tx: Transaction, amount_cents: int) -> str:
    # Element order is the XSD's: Amt, ReqdColltnDt, CdtrSchmeId, PmtTpInf, PmtMtd,
    # MndtRltdInf, RmtInf, Dbtr, DbtrAcct, DbtrAgt, CdtrAgt, Cdtr, CdtrAcct.
    creditor_id = tx.creditor_id if text.is_creditor_id(tx.creditor_id) else refs.creditor_id
    scheme = (
        f"<CdtrSchmeId><Id><PrvtId><Othr><Id>{x(creditor_id)}</Id>"
        "<SchmeNm><Prtry>SEPA</Prtry></SchmeNm></Othr></PrvtId></Id></CdtrSchmeId>"
        if creditor_id
        else ""
    )
    debtor_name = text.shortened(tx.debtor_name, _NAME_MAX)
    return (
        f'<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">{format_cents(amount_cents)}</InstdAmt></Amt>'
        f"{refs.collection_date}{scheme}{refs.payment_type}<PmtMtd>DD</PmtMtd>"
        f"{_mandate(tx)}{_remittance(tx)}"
        + (f"<Dbtr>{_party(refs.dialect, debtor_name)}</Dbtr>" if debtor_name else "")
        + (f"<DbtrAcct><Id><IBAN>{tx.debtor_iban}</IBAN></Id></DbtrAcct>" if text.is_iban(tx.debtor_iban) else "")
        + (f"<DbtrAgt>{_agent(refs.dialect, tx.debtor_bic)}</DbtrAgt>" if text.is_bic(tx.debtor_bic) else "")
        + f"{refs.creditor}</OrgnlTxRef>"
    )


def _mandate(tx: Transaction) -> str:
    mandate_id = text.element("MndtId", tx.mandate_id) if text.fits(tx.mandate_id, 35) else ""
    signed = parse_date(tx.signature_date)
    signature = f"<DtOfSgntr>{signed.isoformat()}</DtOfSgntr>" if signed else ""
    if not (mandate_id or signature):
        return ""
    return f"<MndtRltdInf>{mandate_id}{signature}</MndtRltdInf>"


def _remittance(tx: Transaction) -> str:
    # The DK schema takes one unstructured line (or a creditor reference, which we skip).
    first = tx.remittance[0] if tx.remittance else None
    if not text.fits(first, _REMITTANCE_MAX):
        return ""
    return f"<RmtInf><Ustrd>{x(first)}</Ustrd></RmtInf>"


def _payment_type(block: BlockFacts) -> str:
    parts = (
        (f"<SvcLvl><Cd>{x(block.service_level)}</Cd></SvcLvl>" if block.service_level else "")
        + (f"<LclInstrm><Cd>{x(block.local_instrument)}</Cd></LclInstrm>" if block.local_instrument else "")
        + (f"<SeqTp>{block.sequence_type}</SeqTp>" if block.sequence_type else "")
    )
    return f"<PmtTpInf>{parts}</PmtTpInf>" if parts else ""


def _agent(dialect: Dialect, bic: str | None) -> str:
    return f"<FinInstnId><{dialect.bic_tag}>{bic}</{dialect.bic_tag}></FinInstnId>"


def _party(dialect: Dialect, name: str) -> str:
    return f"<Pty><Nm>{x(name)}</Nm></Pty>" if dialect.party_wrapped else f"<Nm>{x(name)}</Nm>"

