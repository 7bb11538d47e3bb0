"""Assessing a creditor's due requests in child processes while the run reads and writes.

The assessment (``domain/assignment.py``: every eligibility check, the sequence type, the
amendment) is about half the collection run's Python work per request before its files are
written, and reading the due rows and storing the decisions is the other half; in one process
the two take turns. A creditor with more than one chunk has its chunks assessed by two child
processes, each sent the next chunk as soon as it answered its last, while this process reads
the next chunks and stores the answers, in chunk order. Until a child has started (a fork from
the forkserver, then its imports), this process assesses the chunks itself.

A mandate's requests are assessed in order by one assessor, which carries what it decided for
the mandate into the next request (the first one is FRST, the next RCUR): a chunk that goes on
with the previous chunk's last mandate goes where that chunk went. Each chunk crosses as
columns, its dates interned (pickling a date costs more than the rest of a row; a chunk has
few distinct dates). A child is sent a chunk only once it answered its previous one, so
neither side waits on the other's full pipe. A child that fails or dies fails the run: the
assignment is one transaction, so nothing of it is kept.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from sepa_engine import errors, gc_tuning, helper_processes
from sepa_engine.domain.assignment import Assessor, Decision, DueRow, Refused

Assessed = tuple[list[Refused], list[Decision]]

# The date columns of a due row, interned before a chunk is pickled.
_DATE_COLUMNS = frozenset(i for i, name in enumerate(DueRow._fields) if name in {
    "requested_date", "mandate_signed_on", "first_collected_on", "last_collected_on",
})

# Two children: with this process reading and writing, as many busy processes as two cores
# can take, and more would only take turns (BENCHMARKS.md, 2026-12-06).
CHILDREN = 2


class Assessors:
    """The assessor children of one run, shared by its creditors: started when a creditor
    first has a second chunk, closed with the run (``with Assessors() as assessors``)."""

    def __init__(self) -> None:
        self._children: list[_Child] = []

    def __enter__(self) -> Assessors:
        return self

    def __exit__(self, *_exc: object) -> None:
        for child in self._children:
            child.close()
        self._children = []

    def assessed(self, chunks: Iterator[list[DueRow]], assessor: Assessor) -> Iterator[Assessed]:
        """Each chunk's refusals and decisions, in chunk order; the caller stores them as they come."""
        first = next(chunks, None)
        if first is None:
            return
        second = next(chunks, None)
        if second is None or helper_processes.CONTEXT is None:
            yield from map(assessor.assess, itertools.chain([first] if second is None else [first, second], chunks))
            return
        self._children += [_Child() for _ in range(CHILDREN - len(self._children))]
        for child in self._children:
            child.assessor = None  # this creditor's terms go with its first chunk there
        # Chunks sent or assessed, oldest first: the child assessing one, or the answer.
        waiting: collections.deque[_Child | Assessed] = collections.deque()
        last: _Child | None = None  # where the previous chunk went (None: here)
        last_mandate: int | None = None
        try:
            for chunk in itertools.chain((first, second), chunks):
                if chunk[0].mandate_id == last_mandate:
                    target = last
                else:
                    target = _free_child(self._children, waiting)
                if target is None:
                    waiting.append(assessor.assess(chunk))
                else:
                    if target in waiting:
                        # Goes on with the chunk that child still assesses: take that answer first.
                        waiting[waiting.index(target)] = target.receive()
                    target.send(chunk, assessor)
                    waiting.append(target)
                last, last_mandate = target, chunk[-1].mandate_id
                while waiting and (not isinstance(waiting[0], _Child) or waiting[0].answered()):
                    yield _answer(waiting.popleft())
            while waiting:
                yield _answer(waiting.popleft())
        finally:
            # Left with chunks unanswered (the run failed): those children go, so that no
            # later creditor reads an answer that is not its own.
            for entry in waiting:
                if isinstance(entry, _Child) and entry in self._children:
                    entry.close()
                    self._children.remove(entry)


def _free_child(children: list[_Child], waiting: collections.deque[_Child | Assessed]) -> _Child | None:
    """A started child with nothing to do; else, once any has started, the one that will be
    free first (its answer is waited for); None while none has started."""
    started = [child for child in children if child.started()]
    for child in started:
        if child not in waiting:
            return child
    if not started:
        return None
    oldest = next(entry for entry in waiting if isinstance(entry, _Child))
    waiting[waiting.index(oldest)] = oldest.receive()
    return oldest


def _answer(entry: _Child | Assessed) -> Assessed:
    return entry.receive() if isinstance(entry, _Child) else entry


def _pack(rows: list[DueRow]) -> list[tuple[object, ...]]:
    interned: dict[object, object] = {}
    keep = interned.setdefault
    return [
        tuple(keep(value, value) for value in column) if i in _DATE_COLUMNS else column
        for i, column in enumerate(zip(*rows, strict=True))
    ]


def _unpack(columns: list[tuple[object, ...]]) -> list[DueRow]:
    return list(map(DueRow._make, zip(*columns, strict=True)))


class _Child:
    def __init__(self) -> None:
        self._conn, self._process = helper_processes.spawn(_serve, duplex=True)
        self._started = False
        self.assessor: Assessor | None = None  # the one it was sent last

    def started(self) -> bool:
        """Whether it said it is ready (it says so once its imports are done)."""
        if not self._started and self._conn.poll():
            self._started = self._receive() == _READY
        return self._started

    def answered(self) -> bool:
        return self._conn.poll()

    def send(self, rows: list[DueRow], assessor: Assessor) -> None:
        # The assessor (the creditor's terms) goes with the creditor's first chunk only.
        try:
            self._conn.send((None if assessor is self.assessor else assessor, _pack(rows)))
        except OSError as exc:
            raise helper_processes.stopped("assessor", exc, self._process) from None
        self.assessor = assessor

    def receive(self) -> Assessed:
        kind, answer = self._receive()
        if kind == "failed":
            raise errors.from_dict(answer)
        return answer  # type: ignore[no-any-return]

    def _receive(self) -> tuple[str, Any]:
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError) as exc:
            raise helper_processes.stopped("assessor", exc, self._process) from None

    def close(self) -> None:
        try:
            self._conn.send(None)
        except OSError:
            pass  # it is gone already
        self._conn.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


_READY = ("ready", None)


@gc_tuning.long_run()
def _serve(conn: Connection) -> None:
    helper_processes.in_child()
    try:
        _answer_chunks(conn)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the run went away (it stopped, or failed elsewhere): nothing is waiting for us
    finally:
        conn.close()


def _answer_chunks(conn: Connection) -> None:
    conn.send(_READY)
    assessor: Assessor | None = None
    while (message := conn.recv()) is not None:
        state, columns = message
        if state is not None:
            assessor = state
        assert assessor is not None
        try:
            answer: tuple[str, object] = ("assessed", assessor.assess(_unpack(columns)))
        except errors.SepaEngineError as exc:
            answer = ("failed", exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - a fault of the assessor must reach the run, which stops
            answer = ("failed", errors.CollectionError("assessor", None, f"failed: {exc!r}").to_dict())
        conn.send(answer)
