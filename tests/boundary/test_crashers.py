"""Every crasher ever found (tests/testdata/crashers/, see its README) replayed through its
entry point (HTTP ones in tests/api/test_hostile_bodies_api.py): a clear refusal or a clean result, no other exception, nothing stored on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from sepa_engine import config, errors
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest, DebtorAccount
from sepa_engine.db.session import Database
from sepa_engine.iso20022 import returns
from sepa_engine.services import file_enqueue, loading
from tests import accounts_world as world
from tests.boundary.fuzzing import refuses_cleanly

CRASHERS = Path(__file__).resolve().parents[1] / "testdata" / "crashers"


def crasher_files(folder: str) -> list[Path]:
    found = sorted(p for p in (CRASHERS / folder).iterdir() if p.name != "README.md")
    assert found, f"no crasher kept under {folder}/"
    return found


def _count(db: Database, model: type) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("crasher", crasher_files("enqueue"), ids=lambda p: p.name)
def test_enqueue_crashers_are_refused_whole_then_skipped_line_by_line(db: Database, crasher: Path) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    clock = FixedClock(world.NOW)
    with pytest.raises(errors.SepaEngineError), db.transaction() as session:
        file_enqueue.enqueue_file(session, crasher, creditor="pressimmo", clock=clock)
    assert _count(db, DebitRequest) == 0
    with db.transaction() as session:
        report = refuses_cleanly(lambda: file_enqueue.enqueue_file(session, crasher, creditor="pressimmo", skip_bad=True, clock=clock))
    assert report is not None and report.bad
    assert _count(db, DebitRequest) == report.created


@pytest.mark.parametrize("crasher", crasher_files("load"), ids=lambda p: p.name)
def test_load_crashers_are_refused_and_load_nothing(db: Database, crasher: Path) -> None:
    with pytest.raises(loading.LoadFailed) as caught, db.transaction() as session:
        loading.load_directory(session, crasher, clock=FixedClock(world.NOW))
    assert all(str(error).encode("utf-8") for error in caught.value.load_errors)
    assert _count(db, DebtorAccount) == 0


@pytest.mark.parametrize("crasher", crasher_files("config"), ids=lambda p: p.name)
def test_configuration_crashers_are_refused_naming_the_key(crasher: Path) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        config.load_settings(crasher)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("crasher", crasher_files("returns"), ids=lambda p: p.name)
def test_bank_file_crashers_are_refused_as_messages_we_cannot_read(crasher: Path) -> None:
    with pytest.raises(errors.MessageError):
        returns.read(crasher)
