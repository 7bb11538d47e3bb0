"""Group commit for ``POST .../debit-requests``: concurrent enqueues share one transaction.

Each call is parsed and checked in its own request; a writer thread of the batcher then
takes every call waiting at that moment in the lanes it may take (up to ``MAX_BATCH``, see
``_Lanes``) and, in one transaction:

1. enqueues them with ``batch_enqueue.enqueue_parts`` (a few round trips for the whole
   group, whatever the number of its creditors), which also
   tells a replay (a key it knows) from a new request;
2. stores every answer in ``api_idempotency`` (one multi-row INSERT);
3. commits: the actions and their stored answers together, or none of them.

When anything in the group is not a plain new request (a replay, an unknown mandate, a key
reused with other content or by another route, a concurrent writer of the same key on
PostgreSQL), the group is rolled back and each call is run on its own through
``writes.run``, so every call gets exactly the answer it would have had alone. The contract
of the API does not change; only the number of transactions does. While a writer commits
one group, the next one gathers: under load the groups grow, and so does the throughput.

The calls wait in one lane per creditor (``_Lanes``). The first writer takes every lane, so
its groups mix creditors. On PostgreSQL ``WRITERS - 1`` more writers take the lanes whose
calls have waited ``RESCUE_AFTER`` for it, and every lane while its group has run that long: a
group waiting for the rows a job holds on one
creditor (a reconciliation, a file's hand-over) holds back the calls grouped with it and that
creditor's later ones, not the other creditors' for long. SQLite's ledger has one write lock:
one writer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
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
from sepa_engine.db.session import Database, lock_wait_expired, transaction_undone
from sepa_engine.services import batch_enqueue, registry
from sepa_engine.services.batch_enqueue import EnqueueItem
from sepa_engine.services.inputs import DebitRequestInput

log = structlog.get_logger("sepa_engine.api")

MAX_BATCH = 500
# Writer threads on PostgreSQL, each with its own connection: how many groups may wait for a
# job's locks at once before every call waits (SQLite has one writer).
WRITERS = 4
# How long a call waits for the first writer before another takes its lane: well above a
# group's time under load (tens of milliseconds), well below what a job holds rows for.
RESCUE_AFTER = 0.5
# The longest a group waits for calls to reach its expected size (see _Lanes.take).
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
    def __init__(
        self, db: Database, clock: Clock, render: Callable[[registry.RequestResult], dict[str, Any]], *,
        writers: int = WRITERS,
    ) -> None:
        self.db = db
        self.clock = clock
        self.render = render
        # SQLite has one write lock for the whole ledger: a second writer could only wait.
        self.writers = 1 if db.is_sqlite else writers
        self._lanes = _Lanes()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._lock_file: int | None = None
        self._handoff: _Handoff | None = None
        self._waiting = 0
        self._peak = 0
        self._last = 1
        self._direct = _Writer(db)  # the connection of groups run outside the threads (tests)
        database = make_url(db.url).database if db.is_sqlite else None
        if database and database != ":memory:":
            self._lock_file = os.open(f"{database}.api-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def submit(self, call: Call) -> Future[Response]:
        if not self._threads:
            with self._lock:
                if not self._threads:
                    self._threads = [
                        threading.Thread(target=self._serve, args=(n == 0,), name=f"sepa-engine-enqueue-{n}", daemon=True)
                        for n in range(self.writers)
                    ]
                    for thread in self._threads:
                        thread.start()
        self._lanes.put(call)
        return call.done

    async def wait(self, call: Call) -> Response:
        """Submit ``call`` and await its answer in the running event loop."""
        loop = asyncio.get_running_loop()
        handoff = self._handoff
        if handoff is None or handoff.loop is not loop:
            handoff = self._handoff = _Handoff(loop)
        # Calls awaiting their answer, and the most at once since the writer last looked:
        # how many callers are active, which is how big a group may wait to grow (_expected).
        self._waiting += 1
        self._peak = max(self._peak, self._waiting)
        try:
            return await handoff.wait(self.submit(call))
        finally:
            self._waiting -= 1

    def stop(self) -> None:
        """Answer the calls already submitted, then stop the writers."""
        self._lanes.close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        self._direct.close()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    # --- the writers ---------------------------------------------------------------------
    def _serve(self, first: bool) -> None:
        writer = _Writer(self.db)
        try:
            while (taken := self._lanes.take(self._expected if first else None)) is not None:
                lanes, group = taken
                if first:
                    self._last = len(group)
                try:
                    self._run(group, writer)
                finally:
                    self._lanes.done(lanes, first=first)
        finally:
            writer.close()

    def _expected(self) -> int:
        """The concurrency the first writer sees: its previous group's size, or the most calls
        awaiting an answer at once since then, if more. A lone client never waits, while under
        load a group fills up with every active caller instead of leaving with the few whose
        requests happened to be parsed already. On PostgreSQL, where a group costs a dozen
        round trips, groups otherwise settle at half the callers (two cohorts taking turns),
        at twice the round trips per enqueue. Not exact across threads, and need not be: a hint."""
        expected, self._peak = max(self._last, self._peak), self._waiting
        return expected

    def _run(self, group: list[Call], writer: _Writer | None = None) -> None:
        with self._writers():
            self._run_locked(group, writer or self._direct)

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

    def _run_locked(self, group: list[Call], writer: _Writer) -> None:
        try:
            answers = self._together(group, writer) if len(group) > 1 else None
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

    def _together(self, group: list[Call], writer: _Writer) -> list[Response]:
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
        with writer.transaction() as session:
            bodies: dict[int, tuple[int, str]] = {}
            by_creditor: dict[str, list[Call]] = {}
            for call in fresh:
                by_creditor.setdefault(call.creditor, []).append(call)
            for calls, results in zip(by_creditor.values(), self._enqueue(session, by_creditor), strict=True):
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

    def _enqueue(self, session: Session, by_creditor: dict[str, list[Call]]) -> list[list[registry.RequestResult]]:
        """Every creditor's calls in one ``enqueue_parts``: one set of statements for the
        group, not one per creditor (a group spread over four creditors cost twice one
        creditor's; BENCHMARKS.md)."""
        # No savepoint: any refusal raises, and the whole group's transaction rolls back.
        try:
            results = batch_enqueue.enqueue_parts(
                session,
                [batch_enqueue.Part(creditor, [EnqueueItem(call.key, call.data) for call in calls])
                 for creditor, calls in by_creditor.items()],
                clock=self.clock, settle_races=False,
            )
        except errors.SepaEngineError:
            raise _Alone from None
        for calls, result in zip(by_creditor.values(), results, strict=True):
            if len(result.results) != len(calls) or result.created != len(calls):
                # A key the services already knew (a file, the Python API) or a race: alone is exact.
                raise _Alone
        return [list(result.results) for result in results]


class _Alone(Exception):
    """Raised inside the group's transaction: roll it back, run every call alone."""


class _Writer:
    """A writer's own connection, kept from one group to the next: no pool checkout and, on
    PostgreSQL, no pre-ping round trip per group. After any failure the connection is closed
    (a broken one is not reused) and the next group opens another."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: Connection | None = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """``db.transaction()`` on the writer's connection."""
        if self._connection is None:
            self._connection = self.db.engine.connect()
        try:
            with Session(bind=self._connection, expire_on_commit=False) as session, session.begin():
                yield session
        except _Alone:
            raise  # rolled back: the connection is sound
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


class _Lanes:
    """The calls waiting, in one lane per creditor, and which writer may take them.

    The first writer takes every lane no writer serves, with every call waiting in it (up to
    ``MAX_BATCH`` in all); while the group is smaller than expected, calls arriving within
    ``LINGER`` seconds join it. So groups mix creditors, which costs the fewest transactions,
    and under load one writer is enough. The other writers (PostgreSQL) take only lanes whose
    oldest call has waited ``RESCUE_AFTER``, or any lane once the first writer's group has run
    that long: a group waiting for the rows a job holds on one creditor then holds back the
    calls that came with it, not the other creditors' calls that come after (until every
    writer waits). A lane in a group is served until the group ends:
    its later calls wait for that, so two writers never run one creditor's calls at once (they
    would only wait for each other's account locks)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._calls: dict[str, collections.deque[tuple[float, Call]]] = {}
        # Lanes with calls and no writer, in the order their oldest call arrived, and when.
        self._ready: dict[str, float] = {}
        self._served: set[str] = set()
        self._closed = False
        self._first_since: float | None = None  # when the first writer's group began, while it runs

    def put(self, call: Call) -> None:
        with self._changed:
            arrived = time.monotonic()
            lane = call.creditor
            self._calls.setdefault(lane, collections.deque()).append((arrived, call))
            if lane not in self._served and lane not in self._ready:
                self._ready[lane] = arrived
            # Every writer: the first takes it, a lingering one may want it, a rescuer times it.
            self._changed.notify_all()

    def take(self, expected: Callable[[], int] | None) -> tuple[list[str], list[Call]] | None:
        """The lanes of the next group and its calls; None once closed with nothing left.
        ``expected``: the first writer's; None for the others, which rescue (``_eligible``)."""
        with self._changed:
            while True:
                lanes = self._eligible(rescue=expected is None)
                if lanes:
                    break
                if self._closed and not self._ready:
                    return None
                self._changed.wait(self._until_late() if expected is None and self._ready else None)
            group: list[Call] = []
            taken: list[str] = []
            wanted = MAX_BATCH if expected is None else min(expected(), MAX_BATCH)
            deadline = 0.0
            while True:
                for lane in taken:  # calls that arrived in the group's lanes while it lingered
                    self._fill(group, lane)
                for lane in lanes:
                    if len(group) >= MAX_BATCH:
                        break  # a lane joins a group only with calls: full, it is left for the next
                    if lane not in self._served:
                        self._served.add(lane)
                        self._ready.pop(lane, None)
                        taken.append(lane)
                        self._fill(group, lane)
                if len(group) >= wanted or self._closed or expected is None:
                    break
                now = time.monotonic()
                if not deadline:
                    deadline = now + LINGER
                if now >= deadline:
                    break
                self._changed.wait(deadline - now)
                lanes = self._eligible(rescue=False)
            if expected is not None:
                self._first_since = time.monotonic()
            return taken, group

    def done(self, lanes: list[str], *, first: bool = False) -> None:
        """The group of ``lanes`` is answered (``first``: the first writer's): their calls that
        arrived meanwhile are ready."""
        with self._changed:
            if first:
                self._first_since = None
            for lane in lanes:
                self._served.discard(lane)
                calls = self._calls.get(lane)
                if calls:
                    self._ready[lane] = calls[0][0]
                else:
                    self._calls.pop(lane, None)
            self._ready = dict(sorted(self._ready.items(), key=lambda item: item[1]))
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _fill(self, group: list[Call], lane: str) -> None:
        calls = self._calls[lane]
        while calls and len(group) < MAX_BATCH:
            group.append(calls.popleft()[1])

    def _eligible(self, *, rescue: bool) -> list[str]:
        """The lanes a writer may take: every ready one for the first writer; for the others,
        those whose oldest call has waited ``RESCUE_AFTER``, or every one once the first
        writer's group has run that long (it is held: the calls that come meanwhile need not
        wait as long again each)."""
        late = time.monotonic() - RESCUE_AFTER
        if not rescue or self._closed or (self._first_since is not None and self._first_since <= late):
            return list(self._ready)
        return [lane for lane, since in self._ready.items() if since <= late]

    def _until_late(self) -> float:
        soonest = min(self._ready.values())
        if self._first_since is not None:
            soonest = min(soonest, self._first_since)
        return max(0.0, soonest + RESCUE_AFTER - time.monotonic())


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
        if not (lock_wait_expired(exc) or transaction_undone(exc)):  # those are answered 503, counted by code
            log.error("api.enqueue_failed", error=type(exc).__name__)
        call.done.set_exception(exc)
