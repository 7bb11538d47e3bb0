"""Text of the camt.054.001.02 notification, the only place its tags are spelt.

One notification (Ntfctn) per creditor account of the file. In it, one credit booking per
payment block for what was settled (PMNT/IDDT/ESDD, or BBDD for B2B), with a batch
summary and one TxDtls per settled transaction; then one debit booking per returned
transaction (PMNT/IDDT/UPDD) with its reason in RtrInf. A return's booked amount is the
original amount plus the bank's fee when there is one: the fee is in Chrgs, the original
amount in AmtDtls/InstdAmt, which is what a reader should match on (RULES.md section 4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sepa_engine.banksim import text
from sepa_engine.banksim.decisions import Decision
from sepa_engine.banksim.facts import BlockFacts
from sepa_engine.banksim.text import x
from sepa_engine.domain.money import format_cents
from sepa_engine.iso20022.pain008_reader import Transaction

MESSAGE = "camt.054.001.02"
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{MESSAGE}"
PRUNED = ("TxDtls", "Ntry", "Ntfctn")
RETURN_SUB_FAMILY = "UPDD"
_NAME_MAX = 140


@dataclass(frozen=True, slots=True)
class AccountHeader:
    report_id: str
    created: dt.datetime
    iban: str
    owner_name: str | None
    servicer_bic: str | None
    credit_count: int
    credit_cents: int
    debit_count: int
    debit_cents: int


def document_start(message_id: str, created: dt.datetime) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{NAMESPACE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "<BkToCstmrDbtCdtNtfctn>\n"
        f"<GrpHdr>\n<MsgId>{message_id}</MsgId>\n<CreDtTm>{text.date_time_text(created)}</CreDtTm>\n</GrpHdr>\n"
    )


def document_end() -> str:
    return "</BkToCstmrDbtCdtNtfctn>\n</Document>\n"


def account_start(header: AccountHeader) -> str:
    owner_name = text.shortened(header.owner_name, _NAME_MAX)
    owner = f"<Ownr><Nm>{x(owner_name)}</Nm></Ownr>" if owner_name else ""
    servicer = f"<Svcr><FinInstnId><BIC>{header.servicer_bic}</BIC></FinInstnId></Svcr>" if header.servicer_bic else ""
    return (
        "<Ntfctn>\n"
        f"<Id>{header.report_id}</Id>\n"
        f"<CreDtTm>{text.date_time_text(header.created)}</CreDtTm>\n"
        f"<Acct><Id><IBAN>{header.iban}</IBAN></Id><Ccy>EUR</Ccy>{owner}{servicer}</Acct>\n"
        "<TxsSummry>"
        f"<TtlCdtNtries><NbOfNtries>{header.credit_count}</NbOfNtries><Sum>{format_cents(header.credit_cents)}</Sum></TtlCdtNtries>"
        f"<TtlDbtNtries><NbOfNtries>{header.debit_count}</NbOfNtries><Sum>{format_cents(header.debit_cents)}</Sum></TtlDbtNtries>"
        "</TxsSummry>\n"
    )


def account_end() -> str:
    return "</Ntfctn>\n"


def credit_start(reference: str, block: BlockFacts, original_message_id: str, count: int, cents: int) -> str:
    day = text.date_text(block.collection_date)
    amount = format_cents(cents)
    return (
        f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
        f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>"
        f"<AcctSvcrRef>{reference}</AcctSvcrRef>{_bank_code(block.sub_family)}\n"
        f"<NtryDtls><Btch><MsgId>{x(original_message_id)}</MsgId><PmtInfId>{x(block.payment_info_id)}</PmtInfId>"
        f'<NbOfTxs>{count}</NbOfTxs><TtlAmt Ccy="EUR">{amount}</TtlAmt><CdtDbtInd>CRDT</CdtDbtInd></Btch>\n'
    )


def credit_detail(tx: Transaction, end_to_end_id: str, amount_cents: int) -> str:
    return (
        f"<TxDtls><Refs>{_references(tx, end_to_end_id)}</Refs>"
        f'<AmtDtls><InstdAmt><Amt Ccy="EUR">{format_cents(amount_cents)}</Amt></InstdAmt></AmtDtls></TxDtls>\n'
    )


def credit_end() -> str:
    return "</NtryDtls></Ntry>\n"


def returned(
    reference: str,
    block: BlockFacts,
    original_message_id: str,
    tx: Transaction,
    end_to_end_id: str,
    amount_cents: int,
    decision: Decision,
    booked_on: dt.date,
) -> str:
    day = text.date_text(booked_on)
    fee = (
        f'<Chrgs><Amt Ccy="EUR">{format_cents(decision.fee_cents)}</Amt><CdtDbtInd>DBIT</CdtDbtInd></Chrgs>'
        if decision.fee_cents
        else ""
    )
    debtor_name = text.shortened(tx.debtor_name, _NAME_MAX)
    parties = (f"<Dbtr><Nm>{x(debtor_name)}</Nm></Dbtr>" if debtor_name else "") + (
        f"<DbtrAcct><Id><IBAN>{tx.debtor_iban}</IBAN></Id></DbtrAcct>" if text.is_iban(tx.debtor_iban) else ""
    )
    references = (
        f"<MsgId>{x(original_message_id)}</MsgId><PmtInfId>{x(block.payment_info_id)}</PmtInfId>"
        f"{_references(tx, end_to_end_id)}"
    )
    return (
        f'<Ntry><Amt Ccy="EUR">{format_cents(amount_cents + decision.fee_cents)}</Amt>'
        f"<CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>"
        f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>"
        f"<AcctSvcrRef>{reference}</AcctSvcrRef>{_bank_code(RETURN_SUB_FAMILY)}"
        f"<NtryDtls><TxDtls><Refs>{references}</Refs>"
        f'<AmtDtls><InstdAmt><Amt Ccy="EUR">{format_cents(amount_cents)}</Amt></InstdAmt></AmtDtls>'
        f"{fee}"
        + (f"<RltdPties>{parties}</RltdPties>" if parties else "")
        + f"<RltdDts><IntrBkSttlmDt>{text.date_text(block.collection_date)}</IntrBkSttlmDt></RltdDts>"
        f"<RtrInf><OrgnlBkTxCd>{_domain(block.sub_family)}</OrgnlBkTxCd>"
        f"<Rsn><Cd>{decision.reason_code}</Cd></Rsn></RtrInf>"
        "</TxDtls></NtryDtls></Ntry>\n"
    )


def _references(tx: Transaction, end_to_end_id: str) -> str:
    # Refs order in the XSD: MsgId, AcctSvcrRef, PmtInfId, InstrId, EndToEndId, TxId, MndtId.
    instruction = f"<InstrId>{x(tx.instruction_id)}</InstrId>" if text.fits(tx.instruction_id, 35) else ""
    mandate = f"<MndtId>{x(tx.mandate_id)}</MndtId>" if text.fits(tx.mandate_id, 35) else ""
    return f"{instruction}<EndToEndId>{x(end_to_end_id)}</EndToEndId>{mandate}"


def _bank_code(sub_family: str) -> str:
    return f"<BkTxCd>{_domain(sub_family)}</BkTxCd>"


def _domain(sub_family: str) -> str:
    return f"<Domn><Cd>PMNT</Cd><Fmly><Cd>IDDT</Cd><SubFmlyCd>{sub_family}</SubFmlyCd></Fmly></Domn>"
