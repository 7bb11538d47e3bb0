"""The writer's read-back on its own: XSD and control sums of a document fed in pieces.

The read-back checks a block's transactions in batches, after each piece of input, and
leaves the last child of the open block for later (it may still be growing). These tests
feed documents in pieces of every size, including one byte at a time, and with amounts
spelt in every way the XSD allows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sepa_engine import errors
from sepa_engine.iso20022.readback import InProcessReadBack, SplitReadBack
from sepa_engine.iso20022.versions import PAIN_008_001_02, PAIN_008_001_08

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.008"
GOLDEN_08 = TESTDATA / "pain.008.001.08-two-blocks-amendments.xml"
GOLDEN_02 = TESTDATA / "pain.008.001.02-two-blocks-amendments.xml"
# The golden files: block 1 holds 0.10 + 0.20, block 2 999999999.99 + 0.01.
TOTALS = (4, 30 + 99_999_999_999 + 1)


def _read_back(data: bytes, piece: int, version=PAIN_008_001_08) -> InProcessReadBack:
    check = InProcessReadBack(version)
    for start in range(0, len(data), piece):
        check.feed(data[start : start + piece])
    check.close()
    return check


@pytest.mark.parametrize("piece", [1, 7, 100, 1000, 1 << 20])
@pytest.mark.parametrize("golden, version", [(GOLDEN_08, PAIN_008_001_08), (GOLDEN_02, PAIN_008_001_02)])
def test_totals_read_back_do_not_depend_on_how_the_file_is_cut_into_pieces(golden, version, piece):
    check = _read_back(golden.read_bytes(), piece, version)
    assert (check.count, check.cents) == TOTALS


@pytest.mark.parametrize("piece", [1, 1 << 20])
def test_amounts_spelt_without_two_decimals_are_added_exactly(piece):
    # xs:decimal allows "0.1" and "0.200"; the batch fast path is for "0.10" only.
    data = GOLDEN_08.read_bytes().replace(b">0.10</InstdAmt>", b">0.1</InstdAmt>").replace(b">0.20</InstdAmt>", b">0.200</InstdAmt>")
    check = _read_back(data, piece)
    assert (check.count, check.cents) == TOTALS


def test_a_transaction_with_its_own_payment_type_is_read_at_its_amount():
    data = GOLDEN_08.read_bytes().replace(
        b"</PmtId><InstdAmt", b"</PmtId><PmtTpInf><CtgyPurp><Cd>SUPP</Cd></CtgyPurp></PmtTpInf><InstdAmt", 1
    )
    check = _read_back(data, 100)
    assert (check.count, check.cents) == TOTALS


def test_a_block_whose_control_sum_does_not_match_its_transactions_is_refused_naming_the_block():
    data = GOLDEN_08.read_bytes()
    # Block 2 declares 1000000000.00 for 999999999.99 + 0.01: raise one amount by a cent.
    data = data.replace(b">0.01</InstdAmt>", b">0.02</InstdAmt>")
    with pytest.raises(errors.ControlSumMismatch) as caught:
        _read_back(data, 1000)
    assert caught.value.field == "PmtInf[2]/CtrlSum"
    assert "999999999.99" not in str(caught.value) and "1000000000.01" in str(caught.value)


def test_a_group_header_whose_count_does_not_match_is_refused():
    data = GOLDEN_08.read_bytes().replace(b"<NbOfTxs>4</NbOfTxs>", b"<NbOfTxs>5</NbOfTxs>", 1)
    with pytest.raises(errors.ControlSumMismatch) as caught:
        _read_back(data, 1000)
    assert caught.value.field == "GrpHdr/CtrlSum" and "5 tx" in str(caught.value)


def test_an_amount_the_xsd_refuses_is_named_with_the_rule():
    data = GOLDEN_08.read_bytes().replace(b">0.10</InstdAmt>", b">0,10</InstdAmt>")
    # libxml2 may report the violation after the read-back has met the amount: then the
    # amount's own reading refuses it. Either way the file is refused naming InstdAmt.
    with pytest.raises((errors.SchemaViolation, errors.InvalidAmount)) as caught:
        _read_back(data, 1000)
    assert "InstdAmt" in str(caught.value.field)


# --- one document read back on both cores (SplitReadBack) --------------------------------


def _parts(data: bytes) -> list[tuple[str, bytes]]:
    """The golden file as the writer hands it on: header, then per block its start, each
    transaction (one line each), its end; then the document's end."""
    parts: list[tuple[str, bytes]] = []
    head, _, rest = data.partition(b"<PmtInf>\n")
    parts.append(("document_start", head))
    for block in rest.split(b"<PmtInf>\n"):
        start, _, body = block.partition(b"<DrctDbtTxInf>")
        body = b"<DrctDbtTxInf>" + body
        transactions, _, end = body.partition(b"</PmtInf>\n")
        parts.append(("block_start", b"<PmtInf>\n" + start))
        parts.extend(("transactions", line + b"\n") for line in transactions.splitlines())
        parts.append(("block_end", b"</PmtInf>\n"))
        if end:
            parts.append(("document_end", end))
    return parts


class _Dealt(SplitReadBack):
    """Transactions dealt to this process or the child by a fixed pattern, not by timing."""

    def __init__(self, version, pattern: str) -> None:
        super().__init__(version)
        self._pattern, self._dealt = pattern, 0

    def _here_takes(self, data: bytes) -> bool:
        taken = self._pattern[self._dealt % len(self._pattern)] == "h"
        self._dealt += 1
        return taken


def _split_read_back(data: bytes, pattern: str, version=PAIN_008_001_08) -> None:
    check = _Dealt(version, pattern)
    try:
        for kind, piece in _parts(data):
            getattr(check, kind)(piece)
        check.close()
    except BaseException:
        check.abandon()
        raise


# c: the child reads the transaction, h: this process does. Every block split, blocks
# wholly on either side, and the second side starting in the middle of a block.
PATTERNS = ["c", "ch", "hc", "cch", "chhh", "cccchh"]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("golden, version", [(GOLDEN_08, PAIN_008_001_08), (GOLDEN_02, PAIN_008_001_02)])
def test_a_valid_file_read_back_on_two_sides_passes_however_its_transactions_are_dealt(golden, version, pattern):
    _split_read_back(golden.read_bytes(), pattern, version)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_block_control_sum_is_compared_with_both_sides_reads_added(pattern):
    # Block 2 declares 1000000000.00 for 999999999.99 + 0.01: raise one amount by a cent.
    data = GOLDEN_08.read_bytes().replace(b">0.01</InstdAmt>", b">0.02</InstdAmt>")
    with pytest.raises(errors.ControlSumMismatch) as caught:
        _split_read_back(data, pattern)
    assert caught.value.field == "PmtInf[2]/CtrlSum"
    assert "1000000000.01" in str(caught.value)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_group_count_is_compared_with_both_sides_reads_added(pattern):
    data = GOLDEN_08.read_bytes().replace(b"<NbOfTxs>4</NbOfTxs>", b"<NbOfTxs>5</NbOfTxs>", 1)
    with pytest.raises(errors.ControlSumMismatch) as caught:
        _split_read_back(data, pattern)
    assert caught.value.field == "GrpHdr/CtrlSum"


@pytest.mark.parametrize("pattern", ["ccch", "hhhc", "c", "h"])
def test_an_xsd_violation_is_found_on_whichever_side_reads_it(pattern):
    # The last transaction's amount, read by this process in "ccch" and by the child in "hhhc".
    data = GOLDEN_08.read_bytes().replace(b">0.01</InstdAmt>", b">0,01</InstdAmt>")
    # As in one read-back, the amount's own reading may refuse it before libxml2 reports.
    with pytest.raises((errors.SchemaViolation, errors.InvalidAmount)) as caught:
        _split_read_back(data, pattern)
    assert "InstdAmt" in str(caught.value.field)
