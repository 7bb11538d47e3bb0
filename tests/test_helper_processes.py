"""The engine's helper children. Ctrl-C reaches a terminal's whole process group: they leave it
to the engine, which finishes the file or transaction in progress with their help. A child that
dies anyway is reported with how it ended."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from sepa_engine import errors
from sepa_engine.domain.assignment import Assessor
from sepa_engine.iso20022.pain008 import write_pain008
from sepa_engine.iso20022.readback import ReadBackProcess
from sepa_engine.iso20022.versions import PAIN_008_001_08
from sepa_engine.services import assessing
from tests.services.test_assessing import TERMS, _flatten, _ledger


def _interrupt(pid: int) -> None:
    os.kill(pid, signal.SIGINT)
    time.sleep(0.2)  # time for a default handler to have raised KeyboardInterrupt there


def test_a_read_back_child_interrupted_by_ctrl_c_still_checks_the_file(tmp_path):
    from bench.workloads import CREATED, CREDITOR, entries  # a small valid file's transactions
    from sepa_engine.domain.directdebit import FileHeader

    written = tmp_path / "file.xml"
    header = FileHeader("CTRLC", CREATED, CREDITOR.name, CREDITOR.creditor_id)
    with written.open("wb") as out:
        write_pain008(out, PAIN_008_001_08, header, entries(20))
    data = written.read_bytes()
    # A part, acknowledged piece by piece: once the first piece is, the child is at work.
    check = ReadBackProcess(PAIN_008_001_08, part=True)
    check.feed(data[:1000])
    deadline = time.monotonic() + 60
    while check.behind:
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.01)
    _interrupt(check._process.pid)

    check.feed(data[1000:])
    check.close()  # raises CollectionError("validator", ...) if the child died

    assert check.tally is not None and check.tally.declared == (20, sum(1_000 + n for n in range(20)))


def test_assessor_children_interrupted_by_ctrl_c_still_answer():
    rows = _ledger()
    chunks = [[row] for row in rows]

    with assessing.Assessors() as assessors:
        answers = assessors.assessed(iter(chunks), Assessor(TERMS))
        first = next(answers)
        children = assessors._children
        deadline = time.monotonic() + 60
        while not all(child.started() for child in children):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for child in children:
            _interrupt(child._process.pid)
        rest = list(answers)

    assert _flatten([first, *rest]) == Assessor(TERMS).assess(rows)


def test_a_read_back_child_that_is_killed_fails_the_file_saying_how_it_ended():
    # Found in review: the message was "stopped before answering: " and nothing after it
    # (an EOFError says nothing), leaving an operator nothing to tell an OOM kill from a bug.
    check = ReadBackProcess(PAIN_008_001_08, part=True)
    check.feed(b"<?xml version='1.0' encoding='UTF-8'?>")
    deadline = time.monotonic() + 60
    while check.behind:
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.01)
    os.kill(check._process.pid, signal.SIGKILL)

    with pytest.raises(errors.CollectionError) as failed:
        check.close()

    assert failed.value.field == "validator"
    # Whatever the pipe said (an EOFError, or a reset while sending), it is named.
    assert re.fullmatch(r"validator stopped before answering: \S.* \(the child process: killed by SIGKILL\)", str(failed.value))
