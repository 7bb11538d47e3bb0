"""The bank simulator: its pain.002 and camt.054 answers to our pain.008 files.

Answers are checked against the official XSDs in ../shared (skipped, with that reason,
only where ../shared is absent) and against the pain.008 they answer: every id they name
is in the file, and the amounts add up to its control sums.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from freezegun import freeze_time
from lxml import etree

from sepa_engine import errors, outbox
from sepa_engine.banksim import (
    REJECT_CODES,
    RETURN_CODES,
    RETURN_FEES_CENTS,
    GroupStatus,
    Rates,
    answer_paths,
    load_schemas,
    simulate,
    streams,
)
from sepa_engine.banksim.decisions import Bank, Outcome
from sepa_engine.domain import reason_codes
from sepa_engine.domain.calendar import is_target_day, target_days_between
from sepa_engine.domain.directdebit import (
    FileHeader,
    LocalInstrument,
    PaymentBlock,
    SequenceType,
)
from sepa_engine.domain.money import read_cents as to_cents
from sepa_engine.iso20022.pain008 import write_pain008
from sepa_engine.iso20022.versions import (
    PAIN_008_001_02,
    PAIN_008_001_08,
    Pain008Version,
)
from tests.factories import AMENDED, CREDITOR, OTHER_CREDITOR, SMNDA, debit, key
from tests.shared_files import xsd_dir

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "testdata" / "pain.008"
CREATED = dt.datetime(2026, 11, 23, 10, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
VERSIONS = [PAIN_008_001_08, PAIN_008_001_02]
# pain.008.001.08 files (write_file's default) are answered in pain.002.001.10, .001.02 in the DK .001.03.
P2 = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"}
DK = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"}
C54 = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"}
PER_BLOCK = 20
ALLOWED_REJECTS = {"AC01", "AC04", "AC06", "AG01", "MD01", "MS02", "AM04"}
ALLOWED_RETURNS = {"AM04", "MS03", "AC04", "MD07", "SL01", "MD06"}


# --- helpers -------------------------------------------------------------------------------


def assert_valid(path: Path, xsd_name: str) -> None:
    """Whole-document validation with lxml, independent of the simulator's streamed check."""
    schema = etree.XMLSchema(etree.parse(str(xsd_dir() / xsd_name)))
    document = etree.parse(str(path))
    assert schema.validate(document), f"{path.name}: {schema.error_log}"


def write_file(folder: Path, version: Pain008Version = PAIN_008_001_08, message_id: str = "MSG000001", per_block: int = PER_BLOCK) -> Path:
    """Four blocks, two creditor accounts (one without BIC), FRST/RCUR/B2B, amendments,
    instruction ids, debtor BICs and XML specials in names."""
    blocks = [
        PaymentBlock(f"{message_id}-0001", key(sequence_type=SequenceType.FIRST), CREDITOR),
        PaymentBlock(f"{message_id}-0002", key(OTHER_CREDITOR), OTHER_CREDITOR),
        PaymentBlock(f"{message_id}-0003", key(collection_date=dt.date(2026, 12, 22)), CREDITOR),
        PaymentBlock(f"{message_id}-0004", key(local_instrument=LocalInstrument.B2B), CREDITOR),
    ]
    entries = []
    for b, block in enumerate(blocks):
        for i in range(per_block):
            n = b * per_block + i + 1
            entries.append(
                (
                    block,
                    debit(
                        n,
                        1_000 + 37 * n,
                        debtor_bic="COBADEFFXXX" if n % 4 == 0 else None,
                        instruction_id=f"INSTR-{n}" if n % 3 == 0 else None,
                        amendment=AMENDED if n % 7 == 0 else SMNDA if n % 11 == 0 else None,
                        debtor_name=f"D'Artagnan & Fils <{n}>" if n % 5 == 0 else f"Debiteur {n}",
                    ),
                )
            )
    path = folder / f"{message_id}.xml"
    with path.open("wb") as out:
        write_pain008(out, version, FileHeader(message_id, CREATED, CREDITOR.name, CREDITOR.creditor_id), entries)
    return path


@dataclasses.dataclass(frozen=True)
class OriginalTx:
    block: str
    amount_cents: int
    collection_date: str
    mandate_id: str
    sequence_type: str
    debtor_iban: str


def original(path: Path) -> tuple[str, dict[str, int], dict[str, OriginalTx]]:
    """MsgId, control sum per block and every transaction of a pain.008, by end-to-end id."""
    root = etree.parse(str(path)).getroot()
    ns = {"d": etree.QName(root).namespace}
    message_id = root.findtext("d:CstmrDrctDbtInitn/d:GrpHdr/d:MsgId", namespaces=ns)
    sums: dict[str, int] = {}
    transactions: dict[str, OriginalTx] = {}
    for block in root.iterfind("d:CstmrDrctDbtInitn/d:PmtInf", namespaces=ns):
        block_id = block.findtext("d:PmtInfId", namespaces=ns)
        sums[block_id] = to_cents(block.findtext("d:CtrlSum", namespaces=ns), "CtrlSum")
        for tx in block.iterfind("d:DrctDbtTxInf", namespaces=ns):
            transactions[tx.findtext("d:PmtId/d:EndToEndId", namespaces=ns)] = OriginalTx(
                block=block_id,
                amount_cents=to_cents(tx.findtext("d:InstdAmt", namespaces=ns), "InstdAmt"),
                collection_date=block.findtext("d:ReqdColltnDt", namespaces=ns),
                mandate_id=tx.findtext("d:DrctDbtTx/d:MndtRltdInf/d:MndtId", namespaces=ns),
                sequence_type=block.findtext("d:PmtTpInf/d:SeqTp", namespaces=ns),
                debtor_iban=tx.findtext("d:DbtrAcct/d:Id/d:IBAN", namespaces=ns),
            )
    return message_id, sums, transactions


def status_xsd(path: Path) -> str:
    """The XSD of the pain.002 version the report at ``path`` is written in."""
    return etree.QName(etree.parse(str(path)).getroot()).namespace.rsplit(":", 1)[-1] + ".xsd"


def rejections(path: Path) -> list[dict[str, str | None]]:
    root = etree.parse(str(path)).getroot()
    P2 = {"p": etree.QName(root).namespace}  # either version
    found = []
    for block in root.iterfind("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", namespaces=P2):
        for tx in block.iterfind("p:TxInfAndSts", namespaces=P2):
            found.append(
                {
                    "block": block.findtext("p:OrgnlPmtInfId", namespaces=P2),
                    "e2e": tx.findtext("p:OrgnlEndToEndId", namespaces=P2),
                    "status": tx.findtext("p:TxSts", namespaces=P2),
                    "code": tx.findtext("p:StsRsnInf/p:Rsn/p:Cd", namespaces=P2),
                    "amount": tx.findtext("p:OrgnlTxRef/p:Amt/p:InstdAmt", namespaces=P2),
                    "date": tx.findtext("p:OrgnlTxRef/p:ReqdColltnDt", namespaces=P2),
                    "mandate": tx.findtext("p:OrgnlTxRef/p:MndtRltdInf/p:MndtId", namespaces=P2),
                    "sequence": tx.findtext("p:OrgnlTxRef/p:PmtTpInf/p:SeqTp", namespaces=P2),
                    "iban": tx.findtext("p:OrgnlTxRef/p:DbtrAcct/p:Id/p:IBAN", namespaces=P2),
                }
            )
    return found


def entries(path: Path, indicator: str) -> list[etree._Element]:
    root = etree.parse(str(path)).getroot()
    return [e for e in root.iterfind(".//c:Ntry", namespaces=C54) if e.findtext("c:CdtDbtInd", namespaces=C54) == indicator]


def text(element: etree._Element, path: str) -> str | None:
    return element.findtext(path, namespaces=C54)


def cents(element: etree._Element, path: str) -> int:
    return to_cents(text(element, path), path)


def sub_family(entry: etree._Element) -> str | None:
    return text(entry, "c:BkTxCd/c:Domn/c:Fmly/c:SubFmlyCd")


# --- validity ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
@pytest.mark.parametrize("rates", [(0, 0), (0.3, 0.3), (1, 0), (0, 1)], ids=str)
def test_both_answers_are_valid_against_their_official_xsds(tmp_path, version, rates):
    source = write_file(tmp_path, version)
    result = simulate(source, tmp_path / "inbox", *rates, seed=7, schemas=load_schemas(xsd_dir()))
    assert_valid(result.pain002_path, status_xsd(result.pain002_path))
    assert_valid(result.camt054_path, "camt.054.001.02.xsd")


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.xml")), ids=lambda p: p.name)
def test_answers_to_the_golden_files_are_valid(tmp_path, golden):
    # Amendments, SMNDA, an apostrophe in remittance and a 999,999,999.99 debit.
    result = simulate(golden, tmp_path, 0.5, 0.5, seed=3, schemas=load_schemas(xsd_dir()))
    assert_valid(result.pain002_path, status_xsd(result.pain002_path))
    assert_valid(result.camt054_path, "camt.054.001.02.xsd")


def test_answers_to_every_pain008_sample_of_other_banks_tools_are_valid(tmp_path):
    # Files we did not write (ABN AMRO, DK, German 003.02): the answers still fit their XSDs.
    samples = sorted((xsd_dir().parent / "samples" / "pain.008").glob("*.xml"))
    assert samples
    schemas = load_schemas(xsd_dir())
    for number, sample in enumerate(samples):
        result = simulate(sample, tmp_path / str(number), 0.5, 0.5, seed=1, schemas=schemas)
        assert result.transactions > 0, sample.name
        assert_valid(result.pain002_path, status_xsd(result.pain002_path))
        assert_valid(result.camt054_path, "camt.054.001.02.xsd")


def test_a_name_too_long_for_the_dk_schema_is_shortened_and_the_report_stays_valid(tmp_path):
    block = PaymentBlock("LONG-0001", key(), CREDITOR)
    long_name = "Societe Civile Immobiliere des Residences du Parc et des Tilleuls Reunies"  # 74 > 70
    path = tmp_path / "long.xml"
    with path.open("wb") as out:
        write_pain008(out, PAIN_008_001_02, FileHeader("LONG", CREATED, CREDITOR.name), [(block, debit(1, debtor_name=long_name))])
    result = simulate(path, tmp_path / "inbox", 1, 0, seed=1, schemas=load_schemas(xsd_dir()))
    assert_valid(result.pain002_path, "pain.002.001.03.xsd")
    name = etree.parse(str(result.pain002_path)).findtext(".//p:OrgnlTxRef/p:Dbtr/p:Nm", namespaces=DK)
    assert name == long_name[:70]


def test_the_dk_schema_knows_only_rjct_so_accepted_groups_carry_no_status(tmp_path):
    # Why ACCP and PART are not written: the streamed check refuses them, as the XSD does.
    schemas = load_schemas(xsd_dir())
    document = (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>'
        "<GrpHdr><MsgId>M</MsgId><CreDtTm>2026-11-23T10:00:00</CreDtTm></GrpHdr>"
        "<OrgnlGrpInfAndSts><OrgnlMsgId>X</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId>"
        "<GrpSts>ACCP</GrpSts></OrgnlGrpInfAndSts></CstmrPmtStsRpt></Document>"
    )
    with (tmp_path / "accp.xml").open("wb") as out:
        sink = streams.ValidatingSink(out, schemas.pain002, "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03", ("TxInfAndSts",))
        with pytest.raises(errors.SchemaViolation, match="GrpSts"):
            sink.text(document)
            sink.close()


# --- determinism ---------------------------------------------------------------------------


def test_same_file_rates_and_seed_give_the_same_bytes(tmp_path):
    source = write_file(tmp_path)
    first = simulate(source, tmp_path / "a", 0.25, 0.25, seed=42)
    with freeze_time("2031-06-01 03:00:00"):  # the clock plays no part
        second = simulate(source, tmp_path / "b", 0.25, 0.25, seed=42)
    assert first.pain002_path.read_bytes() == second.pain002_path.read_bytes()
    assert first.camt054_path.read_bytes() == second.camt054_path.read_bytes()
    assert (first.rejected, first.returned) == (second.rejected, second.returned)


def test_another_seed_gives_other_answers(tmp_path):
    source = write_file(tmp_path)
    first = simulate(source, tmp_path / "a", 0.25, 0.25, seed=1)
    second = simulate(source, tmp_path / "b", 0.25, 0.25, seed=2)
    assert first.rejected != second.rejected
    assert first.pain002_path.read_bytes() != second.pain002_path.read_bytes()


def test_raising_the_reject_rate_only_adds_rejections(tmp_path):
    source = write_file(tmp_path)
    low = simulate(source, tmp_path / "low", 0.2, 0, seed=5)
    high = simulate(source, tmp_path / "high", 0.6, 0, seed=5)
    assert low.rejected_count < high.rejected_count
    assert {r.end_to_end_id for r in low.rejected} <= {r.end_to_end_id for r in high.rejected}


def test_creation_times_follow_the_file_and_its_bookings(tmp_path):
    source = write_file(tmp_path)
    result = simulate(source, tmp_path / "inbox", 0.2, 0.5, seed=9)
    status_created = etree.parse(str(result.pain002_path)).findtext("p:CstmrPmtStsRpt/p:GrpHdr/p:CreDtTm", namespaces=P2)
    assert status_created == "2026-11-23T12:15:00+01:00"
    last_booking = max(r.booked_on for r in result.returned)
    notification_created = etree.parse(str(result.camt054_path)).findtext("c:BkToCstmrDbtCdtNtfctn/c:GrpHdr/c:CreDtTm", namespaces=C54)
    assert notification_created == f"{last_booking.isoformat()}T18:00:00+01:00"


# --- what the answers say ------------------------------------------------------------------


def test_no_rejects_give_accp_and_one_credit_per_block_equal_to_its_control_sum(tmp_path):
    source = write_file(tmp_path)
    _, sums, _ = original(source)
    result = simulate(source, tmp_path / "inbox", 0, 0, seed=1)

    assert result.group_status is GroupStatus.ACCEPTED
    assert result.status_report_version == "pain.002.001.10"
    report = etree.parse(str(result.pain002_path)).getroot()
    # pain.002.001.10 takes ACCP: the answer acknowledges the file and each block.
    assert report.findtext(".//p:OrgnlGrpInfAndSts/p:GrpSts", namespaces=P2) == "ACCP"
    assert [e.text for e in report.iterfind(".//p:PmtInfSts", namespaces=P2)] == ["ACCP"] * len(sums)
    assert rejections(result.pain002_path) == []
    credits = entries(result.camt054_path, "CRDT")
    assert {text(e, "c:NtryDtls/c:Btch/c:PmtInfId"): cents(e, "c:Amt") for e in credits} == sums
    assert len(credits) == len(sums)
    assert entries(result.camt054_path, "DBIT") == []
    assert (result.settled_count, result.settled_cents) == (4 * PER_BLOCK, sum(sums.values()))


def test_an_all_accepted_pain008_001_02_file_gets_the_dk_report_without_a_group_status(tmp_path):
    # The DK pain.002.001.03 subset, the only .001.03 schema we hold, knows RJCT alone.
    source = write_file(tmp_path, PAIN_008_001_02)
    result = simulate(source, tmp_path / "inbox", 0, 0, seed=1, schemas=load_schemas(xsd_dir()))
    assert result.status_report_version == "pain.002.001.03"
    report = etree.parse(str(result.pain002_path)).getroot()
    assert report.find(".//p:GrpSts", namespaces=DK) is None
    assert report.find(".//p:PmtInfSts", namespaces=DK) is None


def test_reject_rate_one_rejects_every_transaction(tmp_path):
    source = write_file(tmp_path)
    _, sums, transactions = original(source)
    result = simulate(source, tmp_path / "inbox", 1, 1, seed=1)

    assert result.group_status is GroupStatus.REJECTED
    report = etree.parse(str(result.pain002_path)).getroot()
    assert report.findtext(".//p:OrgnlGrpInfAndSts/p:GrpSts", namespaces=P2) == "RJCT"
    assert [e.text for e in report.iterfind(".//p:PmtInfSts", namespaces=P2)] == ["RJCT"] * len(sums)
    listed = rejections(result.pain002_path)
    assert sorted(r["e2e"] for r in listed) == sorted(transactions)
    assert {r["status"] for r in listed} == {"RJCT"}
    # Nothing was settled, so nothing is booked, and nothing can be returned.
    assert entries(result.camt054_path, "CRDT") == entries(result.camt054_path, "DBIT") == []
    assert (result.settled_count, result.settled_cents, result.returned_count) == (0, 0, 0)


def test_some_rejects_give_part_on_the_group_and_on_blocks_with_rejects(tmp_path):
    source = write_file(tmp_path)
    result = simulate(source, tmp_path / "inbox", 0.3, 0, seed=11)
    assert result.group_status is GroupStatus.PARTIALLY_ACCEPTED
    report = etree.parse(str(result.pain002_path)).getroot()
    assert report.findtext(".//p:OrgnlGrpInfAndSts/p:GrpSts", namespaces=P2) == "PART"
    assert len(rejections(result.pain002_path)) == result.rejected_count == 24  # 0.3 * 80
    rejected_blocks = {r["block"] for r in rejections(result.pain002_path)}
    for block in report.iterfind(".//p:OrgnlPmtInfAndSts", namespaces=P2):
        expected = "PART" if block.findtext("p:OrgnlPmtInfId", namespaces=P2) in rejected_blocks else "ACCP"
        assert block.findtext("p:PmtInfSts", namespaces=P2) == expected


def test_some_rejects_in_the_dk_report_give_no_group_status(tmp_path):
    source = write_file(tmp_path, PAIN_008_001_02)
    result = simulate(source, tmp_path / "inbox", 0.3, 0, seed=11)
    assert result.group_status is GroupStatus.PARTIALLY_ACCEPTED
    report = etree.parse(str(result.pain002_path)).getroot()
    assert report.find(".//p:GrpSts", namespaces=DK) is None
    assert len(rejections(result.pain002_path)) == result.rejected_count > 0


def _small_file(folder: Path, count: int) -> Path:
    block = PaymentBlock("SMALL-0001", key(), CREDITOR)
    path = folder / f"small-{count}.xml"
    with path.open("wb") as out:
        write_pain008(out, PAIN_008_001_08, FileHeader(f"SMALL{count}", CREATED, CREDITOR.name), [(block, debit(n, 1_000 + n)) for n in range(1, count + 1)])
    return path


@pytest.mark.parametrize("seed", range(1, 21))
def test_reject_rate_0_34_on_three_transactions_rejects_exactly_one_whatever_the_seed(tmp_path, seed):
    # The demo: `simulate-bank --reject-rate 0.34 --seed 7` on 3 debits rejected none.
    result = simulate(_small_file(tmp_path, 3), tmp_path / "inbox", 0.34, 0, seed=seed)
    assert (result.rejected_count, result.settled_count) == (1, 2)


@pytest.mark.parametrize(
    ("count", "reject_rate", "return_rate", "rejected", "returned"),
    [(3, 0.34, 0.5, 1, 1), (3, 0.5, 0.5, 2, 1), (10, 0.25, 0.0, 3, 0), (10, 0.0, 0.25, 0, 3), (7, 0.1, 0.1, 1, 1), (4, 0.1, 0.1, 0, 0)],
)
def test_counts_are_the_rates_times_the_transactions_rounded_half_up(tmp_path, count, reject_rate, return_rate, rejected, returned):
    result = simulate(_small_file(tmp_path, count), tmp_path / "inbox", reject_rate, return_rate, seed=7)
    assert (result.rejected_count, result.returned_count) == (rejected, returned)
    assert len(rejections(result.pain002_path)) == rejected
    assert len(entries(result.camt054_path, "DBIT")) == returned


def test_a_file_whose_header_count_is_wrong_is_refused(tmp_path):
    source = _small_file(tmp_path, 3)
    source.write_bytes(source.read_bytes().replace(b"<NbOfTxs>3</NbOfTxs>", b"<NbOfTxs>4</NbOfTxs>", 1))
    with pytest.raises(errors.MessageError, match="NbOfTxs"):
        simulate(source, tmp_path / "inbox", 0.34, 0, seed=7)
    assert not (tmp_path / "inbox").exists() or not any((tmp_path / "inbox").iterdir())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_settled_credit_is_the_control_sum_less_the_rejected_amounts(tmp_path, seed):
    source = write_file(tmp_path)
    _, sums, _ = original(source)
    result = simulate(source, tmp_path / "inbox", 0.35, 0.2, seed=seed)
    rejected_by_block = Counter()
    for r in rejections(result.pain002_path):
        rejected_by_block[r["block"]] += to_cents(r["amount"], "InstdAmt")
    credits = {text(e, "c:NtryDtls/c:Btch/c:PmtInfId"): e for e in entries(result.camt054_path, "CRDT")}
    for block, control_sum in sums.items():
        expected = control_sum - rejected_by_block[block]
        if expected == 0:
            assert block not in credits
            continue
        entry = credits[block]
        assert cents(entry, "c:Amt") == cents(entry, "c:NtryDtls/c:Btch/c:TtlAmt") == expected
        details = entry.findall("c:NtryDtls/c:TxDtls", namespaces=C54)
        assert sum(cents(d, "c:AmtDtls/c:InstdAmt/c:Amt") for d in details) == expected
        assert text(entry, "c:NtryDtls/c:Btch/c:NbOfTxs") == str(len(details))
    assert result.settled_cents == sum(sums.values()) - result.rejected_cents


def test_every_named_end_to_end_id_is_in_the_file_and_none_is_both_rejected_and_returned(tmp_path):
    source = write_file(tmp_path)
    _, _, transactions = original(source)
    result = simulate(source, tmp_path / "inbox", 0.4, 0.5, seed=21)
    rejected = [r["e2e"] for r in rejections(result.pain002_path)]
    returned = [text(e, "c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId") for e in entries(result.camt054_path, "DBIT")]
    credited = [
        d.findtext("c:Refs/c:EndToEndId", namespaces=C54)
        for e in entries(result.camt054_path, "CRDT")
        for d in e.iterfind("c:NtryDtls/c:TxDtls", namespaces=C54)
    ]
    assert rejected and returned
    assert set(rejected) | set(returned) | set(credited) <= set(transactions)
    assert len(set(rejected)) == len(rejected) and len(set(returned)) == len(returned)
    assert not set(rejected) & set(returned)
    assert not set(rejected) & set(credited)
    # A return was settled first: it is among the credited transactions.
    assert set(returned) <= set(credited)
    assert sorted(rejected + credited) == sorted(transactions)
    assert [r.end_to_end_id for r in result.rejected] == rejected
    # Bookings are grouped by creditor account, so not in file order.
    assert sorted(r.end_to_end_id for r in result.returned) == sorted(returned)


def test_reason_codes_come_from_the_allowed_lists(tmp_path):
    source = write_file(tmp_path, per_block=60)
    result = simulate(source, tmp_path / "inbox", 0.4, 0.5, seed=4)
    reject_codes = {r["code"] for r in rejections(result.pain002_path)}
    return_codes = {text(e, "c:NtryDtls/c:TxDtls/c:RtrInf/c:Rsn/c:Cd") for e in entries(result.camt054_path, "DBIT")}
    assert reject_codes and reject_codes <= ALLOWED_REJECTS
    assert return_codes and return_codes <= ALLOWED_RETURNS


def test_the_code_tables_are_the_allowed_lists_and_known_reason_codes():
    assert {code for code, _ in REJECT_CODES} == ALLOWED_REJECTS
    assert {code for code, _ in RETURN_CODES} == ALLOWED_RETURNS
    for code in ALLOWED_REJECTS:
        assert reason_codes.RType.REJECT in reason_codes.lookup(code).r_types, code
    for code in ALLOWED_RETURNS:
        assert reason_codes.lookup(code).r_types & {reason_codes.RType.RETURN, reason_codes.RType.REFUND}, code


def test_every_listed_code_and_fee_is_drawn_over_many_transactions():
    bank = Bank(Rates(0.5, 0.5), seed=1, message_id="MSG", count=20_000)
    decisions = [bank.decide() for _ in range(20_000)]
    drawn = Counter((d.outcome, d.reason_code) for d in decisions)
    assert {code for outcome, code in drawn if outcome is Outcome.REJECTED} == ALLOWED_REJECTS
    assert {code for outcome, code in drawn if outcome is Outcome.RETURNED} == ALLOWED_RETURNS
    returns = [d for d in decisions if d.outcome is Outcome.RETURNED]
    assert {d.return_days for d in returns} == {2, 3, 4, 5}
    assert {d.fee_cents for d in returns} == {0, *RETURN_FEES_CENTS}


def test_pain002_echoes_the_original_message_blocks_and_transactions(tmp_path):
    source = write_file(tmp_path, PAIN_008_001_02)
    message_id, sums, transactions = original(source)
    result = simulate(source, tmp_path / "inbox", 0.3, 0, seed=8)
    report = etree.parse(str(result.pain002_path)).getroot()
    group = report.find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", namespaces=DK)
    assert group.findtext("p:OrgnlMsgId", namespaces=DK) == message_id
    assert group.findtext("p:OrgnlMsgNmId", namespaces=DK) == "pain.008.001.02"
    assert group.findtext("p:OrgnlNbOfTxs", namespaces=DK) == str(len(transactions))
    assert to_cents(group.findtext("p:OrgnlCtrlSum", namespaces=DK), "sum") == sum(sums.values())
    blocks = report.findall("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", namespaces=DK)
    assert [b.findtext("p:OrgnlPmtInfId", namespaces=DK) for b in blocks] == list(sums)
    assert [to_cents(b.findtext("p:OrgnlCtrlSum", namespaces=DK), "sum") for b in blocks] == list(sums.values())
    for r in rejections(result.pain002_path):
        tx = transactions[r["e2e"]]
        assert (r["block"], to_cents(r["amount"], "amount"), r["date"], r["mandate"], r["sequence"], r["iban"]) == (
            tx.block,
            tx.amount_cents,
            tx.collection_date,
            tx.mandate_id,
            tx.sequence_type,
            tx.debtor_iban,
        )


def test_returns_are_debits_booked_two_to_five_target_days_after_collection(tmp_path):
    source = write_file(tmp_path, per_block=30)
    message_id, _, transactions = original(source)
    result = simulate(source, tmp_path / "inbox", 0, 1, seed=6)
    debits = entries(result.camt054_path, "DBIT")
    assert len(debits) == len(transactions) == result.returned_count
    for entry in debits:
        tx = transactions[text(entry, "c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId")]
        collected = dt.date.fromisoformat(tx.collection_date)
        booked = dt.date.fromisoformat(text(entry, "c:BookgDt/c:Dt"))
        assert is_target_day(booked)
        assert 2 <= target_days_between(collected, booked) <= 5
        assert sub_family(entry) == "UPDD"
        assert text(entry, "c:NtryDtls/c:TxDtls/c:Refs/c:MsgId") == message_id
        assert text(entry, "c:NtryDtls/c:TxDtls/c:Refs/c:PmtInfId") == tx.block
        assert text(entry, "c:NtryDtls/c:TxDtls/c:Refs/c:MndtId") == tx.mandate_id
        assert text(entry, "c:NtryDtls/c:TxDtls/c:RltdDts/c:IntrBkSttlmDt") == tx.collection_date


def test_a_return_books_the_original_amount_plus_its_fee(tmp_path):
    source = write_file(tmp_path, per_block=30)
    _, _, transactions = original(source)
    result = simulate(source, tmp_path / "inbox", 0, 1, seed=6)
    fees = []
    for entry in entries(result.camt054_path, "DBIT"):
        tx = transactions[text(entry, "c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId")]
        instructed = cents(entry, "c:NtryDtls/c:TxDtls/c:AmtDtls/c:InstdAmt/c:Amt")
        fee = cents(entry, "c:NtryDtls/c:TxDtls/c:Chrgs/c:Amt") if text(entry, "c:NtryDtls/c:TxDtls/c:Chrgs/c:Amt") else 0
        assert instructed == tx.amount_cents
        assert cents(entry, "c:Amt") == instructed + fee
        fees.append(fee)
    assert 0 in fees and any(fees)  # some returns carry a fee, some do not
    assert result.fees_cents == sum(fees)
    assert sorted(fees) == sorted(r.fee_cents for r in result.returned)


def test_credits_use_the_sub_family_of_their_local_instrument(tmp_path):
    source = write_file(tmp_path)
    result = simulate(source, tmp_path / "inbox", 0, 0, seed=1)
    by_block = {text(e, "c:NtryDtls/c:Btch/c:PmtInfId"): sub_family(e) for e in entries(result.camt054_path, "CRDT")}
    assert by_block == {"MSG000001-0001": "ESDD", "MSG000001-0002": "ESDD", "MSG000001-0003": "ESDD", "MSG000001-0004": "BBDD"}


def test_one_notification_per_creditor_account_with_its_totals(tmp_path):
    source = write_file(tmp_path)
    result = simulate(source, tmp_path / "inbox", 0.2, 0.3, seed=13)
    root = etree.parse(str(result.camt054_path)).getroot()
    notifications = root.findall("c:BkToCstmrDbtCdtNtfctn/c:Ntfctn", namespaces=C54)
    assert [n.findtext("c:Acct/c:Id/c:IBAN", namespaces=C54) for n in notifications] == [CREDITOR.iban, OTHER_CREDITOR.iban]
    for notification in notifications:
        for indicator, total in (("CRDT", "c:TxsSummry/c:TtlCdtNtries"), ("DBIT", "c:TxsSummry/c:TtlDbtNtries")):
            booked = [e for e in notification.iterfind("c:Ntry", namespaces=C54) if text(e, "c:CdtDbtInd") == indicator]
            assert notification.findtext(f"{total}/c:NbOfNtries", namespaces=C54) == str(len(booked))
            assert cents(notification, f"{total}/c:Sum") == sum(cents(e, "c:Amt") for e in booked)


def test_result_totals_match_the_answers(tmp_path):
    source = write_file(tmp_path)
    _, sums, transactions = original(source)
    result = simulate(source, tmp_path / "inbox", 0.3, 0.3, seed=17)
    assert result.transactions == len(transactions) and result.sum_cents == sum(sums.values())
    assert result.rejected_count == len(result.rejected)
    assert result.rejected_cents == sum(transactions[r.end_to_end_id].amount_cents for r in result.rejected)
    assert result.returned_cents == sum(transactions[r.end_to_end_id].amount_cents for r in result.returned)
    assert result.settled_count == result.transactions - result.rejected_count
    assert result.original_message_name == "pain.008.001.08"


def test_without_details_the_result_keeps_only_the_totals(tmp_path):
    source = write_file(tmp_path)
    kept = simulate(source, tmp_path / "a", 0.3, 0.3, seed=17)
    counted = simulate(source, tmp_path / "b", 0.3, 0.3, seed=17, keep_details=False)
    assert (counted.rejected, counted.returned) == ((), ())
    assert dataclasses.replace(kept, rejected=(), returned=(), pain002_path=counted.pain002_path, camt054_path=counted.camt054_path) == counted


# --- files ---------------------------------------------------------------------------------


def test_answers_are_owner_only_and_named_after_the_message_id(tmp_path):
    source = write_file(tmp_path, message_id="SE20261123101500AB")
    out = tmp_path / "inbox"
    result = simulate(source, out, 0.1, 0.1, seed=1)
    assert result.paths == (out / "SE20261123101500AB-pain002.xml", out / "SE20261123101500AB-camt054.xml")
    assert result.paths == answer_paths(out, "SE20261123101500AB")
    for path in result.paths:
        assert path.stat().st_mode & 0o777 == outbox.FILE_MODE
    assert out.stat().st_mode & 0o777 == outbox.DIR_MODE
    assert list(outbox.leftovers(out)) == []


def test_a_message_id_never_escapes_the_output_folder():
    assert answer_paths(Path("inbox"), "../x/y.z") == (Path("inbox/___x_y_z-pain002.xml"), Path("inbox/___x_y_z-camt054.xml"))


def test_an_existing_answer_is_never_overwritten(tmp_path):
    source = write_file(tmp_path)
    out = tmp_path / "inbox"
    first = simulate(source, out, 0.1, 0.1, seed=1)
    before = [p.read_bytes() for p in first.paths]
    with pytest.raises(errors.CollectionError, match="already exists"):
        simulate(source, out, 0.5, 0.5, seed=2)
    assert [p.read_bytes() for p in first.paths] == before
    assert list(outbox.leftovers(out)) == []


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("rates", [(-0.1, 0), (0, 1.5), (float("nan"), 0), (True, 0)], ids=str)
def test_rates_outside_zero_to_one_are_refused(tmp_path, rates):
    source = write_file(tmp_path)
    with pytest.raises(errors.ConfigurationError):
        simulate(source, tmp_path / "inbox", *rates, seed=1)
    assert not (tmp_path / "inbox").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not xml at all", errors.UnreadableFile),
        (b"", errors.UnreadableFile),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>', errors.UnreadableFile),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"/>', errors.UnknownMessage),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"><CstmrDrctDbtInitn/></Document>', errors.MessageError),
    ],
    ids=["not-xml", "empty", "doctype", "camt", "no-header"],
)
def test_a_file_that_is_not_a_readable_pain008_is_refused(tmp_path, content, expected):
    path = tmp_path / "input.xml"
    path.write_bytes(content)
    with pytest.raises(expected):
        simulate(path, tmp_path / "inbox", 0.1, 0.1, seed=1)
    assert not (tmp_path / "inbox").exists()


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(errors.UnreadableFile, match="does not exist"):
        simulate(tmp_path / "nope.xml", tmp_path / "inbox", 0, 0, seed=1)


def test_a_payment_block_id_the_dk_report_cannot_echo_is_refused(tmp_path):
    block = PaymentBlock("MSG_1_0001", key(), CREDITOR)  # "_" is Max35Text but not DK
    path = tmp_path / "underscore.xml"
    with path.open("wb") as out:
        write_pain008(out, PAIN_008_001_08, FileHeader("MSG1", CREATED, CREDITOR.name), [(block, debit(1))])
    with pytest.raises(errors.MessageError, match="PmtInfId") as raised:
        simulate(path, tmp_path / "inbox", 0, 0, seed=1)
    assert raised.value.location == "/Document/CstmrDrctDbtInitn/PmtInf[1]/PmtInfId"


def test_a_currency_other_than_euro_is_refused(tmp_path):
    path = tmp_path / "usd.xml"
    path.write_text((GOLDEN / "pain.008.001.02-two-blocks-amendments.xml").read_text().replace('Ccy="EUR"', 'Ccy="USD"', 1))
    with pytest.raises(errors.MessageError, match="not EUR"):
        simulate(path, tmp_path / "inbox", 0, 0, seed=1)


# --- memory --------------------------------------------------------------------------------

_CHILD = """
import resource, sys
from sepa_engine import logs
from sepa_engine.banksim import load_schemas, simulate
logs.configure(json_lines=True)  # events to stderr, stdout keeps the measure
schemas = load_schemas(sys.argv[3])
for size, source in enumerate(sys.argv[1:3]):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = simulate(source, sys.argv[4] + str(size), 0.05, 0.05, seed=1, schemas=schemas, keep_details=False)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(result.transactions, (after - before) // 1024)
"""

SMALL, LARGE = 2_000, 20_000


def _pain008_of(path: Path, count: int) -> Path:
    blocks = [PaymentBlock(f"BIG-{i:04d}", key(), CREDITOR) for i in range(4)]
    with path.open("wb") as out:
        write_pain008(
            out,
            PAIN_008_001_08,
            FileHeader("BIG", CREATED, CREDITOR.name),
            ((blocks[i * 4 // count], debit(i, 1_000 + i % 5_000)) for i in range(count)),
        )
    return path


def test_a_file_ten_times_larger_is_answered_in_the_same_memory(tmp_path):
    # One process answers a small file, then one ten times larger: the peak resident size
    # (a high-water mark) grows for the larger only by what the simulator holds per
    # transaction. Holding them costs over 1 KB each (100,000 took well over 100 MB),
    # so 18,000 more would add 18 MB or more; streaming adds next to nothing. 100,000
    # transactions at once belong to bench/, not to a timed test.
    small = _pain008_of(tmp_path / "small.xml", SMALL)
    large = _pain008_of(tmp_path / "large.xml", LARGE)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(small), str(large), str(xsd_dir()), str(tmp_path / "inbox")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    (small_count, _first_growth), (large_count, growth_mib) = (map(int, line.split()) for line in child.stdout.splitlines())
    assert (small_count, large_count) == (SMALL, LARGE)
    assert growth_mib < 8, f"answering {LARGE} transactions after {SMALL} grew the process by {growth_mib} MiB"
