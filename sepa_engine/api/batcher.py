"""Group commit for ``POST .../debit-requests``: concurrent enqueues share one transaction.

Each call is parsed and checked in its own request; the batcher's single writer thread
then takes every call waiting at that moment (up to ``MAX_BATCH``, see ``_gather``) and,
in one transaction:

1. enqueues them with ``batch_enqueue.enqueue_requests`` (a few round trips for the whole
   group, per creditor), which also tells a replay (a key it knows) from a new request;
2. stores every answer in ``api_idempotency`` (one multi-row INSERT);
3. commits: the actions and their stored answers together, or none of them.

When anything in the group is not a plain new request (a replay, an unknown mandate, a key
reused with other content or by another route, a concurrent writer of the same key on
PostgreSQL), the group is rolled back and each call is run on its own through
``writes.run``, so every call gets exactly the answer it would have had alone. The contract
of the API does not change; only the number of transactions does. While the writer commits
one group, the next one gathers: under load the groups grow, and so does the throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import HTTPException
from fastapi.responses import Response
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.api import problems, writes
from sepa_engine.clock import Clock
from sepa_engine.db.repositories import api as api_repo
from sepa_engine.db.session import Database, lock_wait_expired
from sepa_engine.services import batch_enqueue, registry
from sepa_engine.services.batch_enqueue import EnqueueItem
from sepa_engine.services.inputs import DebitRequestInput

log = structlog.get_logger("sepa_engine.api")

MAX_BATCH = 500
# The longest a group waits for calls to reach the previous group's size (see _gather).
LINGER = 0.003


@dataclass(slots=True)
class Call:
    creditor: str
    scope: str
    token_id: int
    key: str
    method: str
    path: str
    request_hash: str
    data: DebitRequestInput
    # Runs the call alone (writes.run with the single-request action): the fallback.
    alone: Callable[[], Response]
    done: Future[Response] = field(default_factory=Future)


class EnqueueBatcher:
    def __init__(self, db: Database, clock: Clock, render: Callable[[registry.RequestResult], dict[str, Any]]) -> None:
        self.db = db
        self.clock = clock
        self.render = render
        self._queue: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._lock_file: int | None = None
        self._handoff: _Handoff | None = None
        self._waiting = 0
        self._peak = 0
        self._connection: Connection | None = None  # the writer thread's own (see _transaction)
        database = make_url(db.url).database if db.is_sqlite else None
        if database and database != ":memory:":
            self._lock_file = os.open(f"{database}.api-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def submit(self, call: Call) -> Future[Response]:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="sepa-engine-enqueue", daemon=True)
                    self._thread.start()
        self._queue.put(call)
        return call.done

    async def wait(self, call: Call) -> Response:
        """Submit ``call`` and await its answer in the running event loop."""
        loop = asyncio.get_running_loop()
        handoff = self._handoff
        if handoff is None or handoff.loop is not loop:
            handoff = self._handoff = _Handoff(loop)
        # Calls awaiting their answer, and the most at once since the writer last looked:
        # how many callers are active, which is how big a group may wait to grow (_gather).
        self._waiting += 1
        self._peak = max(self._peak, self._waiting)
        try:
            return await handoff.wait(self.submit(call))
        finally:
            self._waiting -= 1

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        self._close_connection()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    # --- the writer ----------------------------------------------------------------------
    def _loop(self) -> None:
        last = 1
        while True:
            first = self._queue.get()
            if first is None:
                return
            # Not exact across threads, and need not be: a hint of how many callers are active.
            expected, self._peak = max(last, self._peak), self._waiting
            group = self._gather(first, expected)
            last = len(group)
            self._run(group)

    def _gather(self, first: Call, expected: int) -> list[Call]:
        """``first`` and the calls behind it: every call waiting, and, while the group is
        smaller than ``expected``, those arriving within ``LINGER`` seconds.

        ``expected`` is the concurrency the writer sees: the previous group's size, or the
        most calls awaiting an answer at once since the previous group, if more. A lone
        client never waits, while under load a group fills up with every active caller
        instead of leaving with the few whose requests happened to be parsed already. On
        PostgreSQL, where a group costs a dozen round trips, groups otherwise settle at half
        the callers (two cohorts taking turns), at twice the round trips per enqueue."""
        group = [first]
        deadline = 0.0
        while len(group) < MAX_BATCH:
            try:
                following = self._queue.get_nowait()
            except queue.Empty:
                if len(group) >= expected:
                    break
                now = time.monotonic()
                if not deadline:
                    deadline = now + LINGER
                if now >= deadline:
                    break
                try:
                    following = self._queue.get(timeout=deadline - now)
                except queue.Empty:
                    break
            if following is None:
                self._queue.put(None)
                break
            group.append(following)
        return group

    def _run(self, group: list[Call]) -> None:
        with self._writers():
            self._run_locked(group)

    @contextlib.contextmanager
    def _writers(self) -> Iterator[None]:
        """SQLite: API processes sharing one ledger take turns through a ``flock`` beside it.
        The kernel wakes the next one at once, where SQLite's busy handler would sleep and
        poll (up to 100 ms a try), which is what made the latency of two processes jump."""
        if self._lock_file is None:
            yield
            return
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _run_locked(self, group: list[Call]) -> None:
        try:
            answers = self._together(group) if len(group) > 1 else None
        except Exception as exc:  # noqa: BLE001 - _Alone, or any failure of the group: every call alone decides
            if lock_wait_expired(exc):
                # Another transaction held a lock past the wait: alone, each call would wait
                # for it again, and the calls queued behind the group with them.
                for call in group:
                    call.done.set_exception(exc)
                return
            answers = None
        if answers is None:
            for call in group:
                _settle(call, call.alone)
            return
        for call, response in zip(group, answers, strict=True):
            call.done.set_result(response)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Session]:
        """``db.transaction()`` on a connection the writer keeps: no pool checkout and, on
        PostgreSQL, no pre-ping round trip per group. After any failure the connection is
        closed (a broken one is not reused) and the next group opens another."""
        if self._connection is None:
            self._connection = self.db.engine.connect()
        try:
            with Session(bind=self._connection, expire_on_commit=False) as session, session.begin():
                yield session
        except _Alone:
            raise  # rolled back: the connection is sound
        except BaseException:
            self._close_connection()
            raise

    def _close_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def _together(self, group: list[Call]) -> list[Response]:
        """The group's answers, committed; raises ``_Alone`` (rolling the whole group back, so
        no savepoint is needed) when any call must be run alone."""
        # No lookup of the stored answers beforehand (a round trip per group): a replay of an
        # enqueue is a key the services know (enqueue_requests reports it, or refuses another
        # body), and a key another route stored in this scope fails the answers' INSERT on
        # their unique (scope, key). Either way the group rolls back and every call runs alone.
        firsts: set[tuple[str, str]] = set()
        fresh: list[Call] = []
        for call in group:
            ident = (call.scope, call.key)
            if ident in firsts:
                raise _Alone  # the same key twice: exact on its own, one after the other
            firsts.add(ident)
            fresh.append(call)
        with self._transaction() as session:
            bodies: dict[int, tuple[int, str]] = {}
            by_creditor: dict[str, list[Call]] = {}
            for call in fresh:
                by_creditor.setdefault(call.creditor, []).append(call)
            for creditor, calls in by_creditor.items():
                results = self._enqueue(session, creditor, calls)
                for call, result in zip(calls, results, strict=True):
                    bodies[id(call)] = (201 if result.created else 200, writes.dumps(self.render(result)))
            now = self.clock.now()
            try:
                api_repo.store_answers(
                    session,
                    [
                        {"scope": c.scope, "idempotency_key": c.key, "method": c.method, "path": c.path[:2000],
                         "request_hash": c.request_hash, "status_code": bodies[id(c)][0],
                         "response_body": bodies[id(c)][1], "token_id": c.token_id, "created_at": now}
                        for c in fresh
                    ],
                )
            except IntegrityError:
                raise _Alone from None
        return [
            Response(bodies[id(call)][1], status_code=bodies[id(call)][0], media_type="application/json",
                     headers={"Idempotency-Key": call.key})
            for call in group
        ]

    def _enqueue(self, session: Session, creditor: str, calls: list[Call]) -> list[registry.RequestResult]:
        # No savepoint: any refusal raises, and the whole group's transaction rolls back.
        try:
            result = batch_enqueue.enqueue_requests(
                session, creditor, [EnqueueItem(call.key, call.data) for call in calls], clock=self.clock
            )
        except errors.SepaEngineError:
            raise _Alone from None
        if len(result.results) != len(calls) or result.created != len(calls):
            # A key the services already knew (a file, the Python API) or a race: alone is exact.
            raise _Alone
        return list(result.results)


class _Alone(Exception):
    """Raised inside the group's transaction: roll it back, run every call alone."""


class _Handoff:
    """Answers from the writer thread to the event loop with one wake-up per group.

    ``asyncio.wrap_future`` wakes the loop (``call_soon_threadsafe``) once per future: a
    group of sixteen answers cost sixteen wake-ups and as many GIL hand-overs. Here the
    first answer of a burst schedules one flush, and the answers that arrive before the
    loop runs it ride along."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._arrived: list[tuple[asyncio.Future[Response], Future[Response]]] = []

    def wait(self, done: Future[Response]) -> asyncio.Future[Response]:
        waiter: asyncio.Future[Response] = self.loop.create_future()
        done.add_done_callback(lambda future: self._arrive(waiter, future))
        return waiter

    def _arrive(self, waiter: asyncio.Future[Response], done: Future[Response]) -> None:
        with self._lock:
            self._arrived.append((waiter, done))
            first = len(self._arrived) == 1
        if first:
            try:
                self.loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _flush(self) -> None:
        with self._lock:
            arrived, self._arrived = self._arrived, []
        for waiter, done in arrived:
            if waiter.cancelled():
                continue
            failure = done.exception()
            if failure is not None:
                waiter.set_exception(failure)
            else:
                waiter.set_result(done.result())


def _settle(call: Call, alone: Callable[[], Response]) -> None:
    try:
        call.done.set_result(alone())
    except errors.SepaEngineError as exc:
        call.done.set_result(problems.from_error(exc))
    except HTTPException as exc:
        call.done.set_exception(exc)
    except Exception as exc:  # noqa: BLE001 - handed to the request, which reports it as a 500
        log.error("api.enqueue_failed", error=type(exc).__name__)
        call.done.set_exception(exc)
