"""Calls started at the same moment on threads of their own, for the tests of races."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select, text

from sepa_engine.db.models import DebtorAccount, Mandate
from sepa_engine.db.session import Database


def at_once(*calls: Callable[[], object], timeout: float = 60) -> list[object]:
    """Run each call on its own thread, all released together by one barrier: what each
    returned, or the exception it raised, in the order they finished. A call still running
    after ``timeout`` seconds fails the test rather than hang it."""
    start = threading.Barrier(len(calls))
    outcomes: list[object] = []

    def run(call: Callable[[], object]) -> None:
        try:
            start.wait(timeout=timeout)
            outcomes.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test as its outcome
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), f"a call ran for more than {timeout} s"
    return outcomes


def in_thread(call: Callable[[], object], *, start: bool = True) -> tuple[threading.Thread, list[object]]:
    """``call`` started on a thread of its own (or ready to be, with ``start=False``); the
    list gets what it returned, or the exception it raised, once it ends."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test as its outcome
            outcome.append(exc)

    thread = threading.Thread(target=run)
    if start:
        thread.start()
    return thread, outcome


def until_a_writer_waits_for_a_lock(db: Database, *, or_ends: threading.Thread | None = None) -> None:
    """PostgreSQL: until another session waits for a lock (the held call reached its
    writer), or ``or_ends`` has ended (a call that may find nothing to wait for); SQLite
    shows no waiter, so a moment for the call to reach its writer."""
    if db.is_sqlite:
        time.sleep(0.2)
        return
    deadline = time.monotonic() + 30
    with db.engine.connect() as watcher:
        while (or_ends is None or or_ends.is_alive()) and not watcher.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar():
            assert time.monotonic() < deadline, "the held call never waited for a lock"
            time.sleep(0.02)
            watcher.rollback()


def hold_the_hand_over(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The next file's hand-over stops after its first step that locks rows of the ledger
    besides its debits (the mandates' history or the payments, whichever it takes first):
    ``handing`` is set there, and it goes on once ``release`` is."""
    from sepa_engine.db.repositories import collection as collection_repo
    from sepa_engine.services import accounts

    handing, release = threading.Event(), threading.Event()

    def pause_after(step: Callable[..., object]) -> Callable[..., object]:
        def paused(*args: object, **kwargs: object) -> object:
            result = step(*args, **kwargs)
            if not handing.is_set():
                handing.set()
                assert release.wait(timeout=30)
            return result
        return paused

    monkeypatch.setattr(accounts, "book_submitted_payments", pause_after(accounts.book_submitted_payments))
    monkeypatch.setattr(collection_repo, "record_presentation", pause_after(collection_repo.record_presentation))
    return handing, release


def the_other_side_of_a_cycle(db: Database, writer: threading.Thread, go: Callable[[], object]) -> None:
    """A transaction that closes a cycle with ``writer`` over a debtor's account and mandate,
    then commits: it locks every account, lets the writer go (``go``), and once the writer
    holds its mandate and waits for the account, asks for every mandate. No engine writer
    takes an account before its mandate (ARCHITECTURE, "One lock order"); this one does, so
    that the cycle forms at a known moment. It gives PostgreSQL ten seconds before looking for
    a cycle itself, so the writer (one second, the default) is the transaction undone.
    SQLite queues the two at BEGIN IMMEDIATE: a writer already holding the ledger must have
    been let go before this is called."""
    with db.transaction() as other:
        if db.is_sqlite:  # BEGIN IMMEDIATE took the ledger's write lock
            other.execute(text("UPDATE debtor_accounts SET reference = reference"))
        else:
            other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            other.execute(select(DebtorAccount.id).with_for_update())
        go()
        until_a_writer_waits_for_a_lock(db, or_ends=writer)
        other.execute(select(Mandate.id).with_for_update())
        if db.is_sqlite:
            other.execute(text("UPDATE mandates SET status = status"))
