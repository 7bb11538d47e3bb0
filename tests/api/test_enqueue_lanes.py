"""The batcher's lanes on their own (api/batcher.py, ``_Lanes``): the first writer takes
every creditor's calls at once; another writer only calls that have waited, so that a group
held by a job's locks holds back no other creditor for long; one writer per lane at a time;
every call answered before the writers stop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from sepa_engine.api import batcher
from sepa_engine.api.batcher import MAX_BATCH, _Lanes

RESCUER = None  # take()'s expected for a writer other than the first


@dataclass(frozen=True)
class Pending:
    creditor: str
    name: str


def first(lanes: _Lanes, expected: int = 1) -> tuple[list[str], list[str]]:
    taken = lanes.take(lambda: expected)
    assert taken is not None
    return taken[0], [call.name for call in taken[1]]  # type: ignore[attr-defined]


def put(lanes: _Lanes, *names: str) -> None:
    for name in names:
        lanes.put(Pending(name.split("-")[0], name))  # type: ignore[arg-type]


def test_the_first_writer_takes_every_creditors_calls_in_one_group() -> None:
    lanes = _Lanes()
    put(lanes, "b-1", "a-1", "b-2", "c-1")
    assert first(lanes) == (["b", "a", "c"], ["b-1", "b-2", "a-1", "c-1"])


def test_a_creditor_in_a_group_is_not_given_to_another_writer_until_the_group_is_done() -> None:
    lanes = _Lanes()
    put(lanes, "p-1")
    assert first(lanes) == (["p"], ["p-1"])
    put(lanes, "p-2", "o-1")
    # p's group is still being written: the next group has the other creditor only.
    assert first(lanes) == (["o"], ["o-1"])
    lanes.done(["o"])
    lanes.done(["p"])
    assert first(lanes) == (["p"], ["p-2"])


def test_another_writer_takes_only_the_calls_that_waited_for_the_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(batcher, "RESCUE_AFTER", 0.2)
    lanes = _Lanes()
    put(lanes, "p-1")
    assert first(lanes) == (["p"], ["p-1"])  # the first writer is now held by p's group
    # Read before the call is put: the lanes time it from its own arrival, a moment later
    # than a reading taken after put (a CI run failed with 0.1994 s against 0.2).
    arrived = time.monotonic()
    put(lanes, "o-1")
    taken = lanes.take(RESCUER)
    assert taken is not None and [call.creditor for call in taken[1]] == ["o"]  # type: ignore[attr-defined]
    assert time.monotonic() - arrived >= 0.2  # left to the first writer while it might come


def test_a_group_holds_at_most_max_batch_calls_and_the_rest_of_its_lane_comes_next() -> None:
    lanes = _Lanes()
    for n in range(MAX_BATCH + 3):
        put(lanes, f"p-{n}")
    taken, names = first(lanes)
    assert (taken, names) == (["p"], [f"p-{n}" for n in range(MAX_BATCH)])
    lanes.done(["p"])
    assert first(lanes) == (["p"], [f"p-{n}" for n in range(MAX_BATCH, MAX_BATCH + 3)])


def test_a_group_smaller_than_expected_takes_the_calls_that_arrive_while_it_lingers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A linger long enough for any machine's scheduler: the group leaves once it has two.
    monkeypatch.setattr(batcher, "LINGER", 30.0)
    lanes = _Lanes()
    put(lanes, "p-1")
    second = threading.Timer(0.05, lambda: put(lanes, "o-1"))
    second.start()
    assert first(lanes, expected=2) == (["p", "o"], ["p-1", "o-1"])
    second.join()


@pytest.mark.parametrize("expected", [lambda: 1, RESCUER], ids=["first writer", "another writer"])
def test_closed_lanes_give_their_waiting_calls_to_the_writers_then_nothing(monkeypatch, expected) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(batcher, "RESCUE_AFTER", 3600.0)  # closing: nothing waits to be late
    lanes = _Lanes()
    put(lanes, "p-1")
    lanes.close()
    taken = lanes.take(expected)
    assert taken is not None and taken[0] == ["p"]
    lanes.done(["p"])
    assert lanes.take(expected) is None


def test_a_writer_waiting_for_work_wakes_when_a_call_arrives_and_when_the_lanes_close() -> None:
    lanes = _Lanes()
    taken: list[Any] = []
    writer = threading.Thread(target=lambda: taken.extend([lanes.take(lambda: 1), lanes.take(lambda: 1)]))
    writer.start()
    put(lanes, "p-1")
    lanes.close()
    writer.join(10)
    assert not writer.is_alive()
    assert [t if t is None else t[0] for t in taken] == [["p"], None]


def test_a_creditor_left_out_of_a_full_group_stays_free_for_the_next_writer() -> None:
    # Found in review: a full group still marked every ready creditor as its own, so their
    # calls waited for a group that held none of them.
    lanes = _Lanes()
    for n in range(MAX_BATCH):
        put(lanes, f"p-{n}")
    put(lanes, "o-1")
    taken, names = first(lanes)
    assert taken == ["p"] and len(names) == MAX_BATCH
    assert first(lanes) == (["o"], ["o-1"])  # while p's group is still being written


def test_once_the_first_writer_is_held_another_takes_new_calls_at_once_and_waits_again_when_it_is_free(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # While a job's locks hold the first writer's group, the other creditors' calls that keep
    # arriving should not each wait RESCUE_AFTER again.
    monkeypatch.setattr(batcher, "RESCUE_AFTER", 0.5)
    lanes = _Lanes()
    put(lanes, "p-1")
    assert first(lanes) == (["p"], ["p-1"])
    time.sleep(0.6)  # the first writer's group has run past RESCUE_AFTER: held
    # Read before the call is put: the lanes time it from its own arrival, a moment later
    # than a reading taken after put (a CI run failed with 0.1994 s against 0.2).
    arrived = time.monotonic()
    put(lanes, "o-1")
    taken = lanes.take(RESCUER)
    assert taken is not None and taken[0] == ["o"]
    assert time.monotonic() - arrived < 0.5  # at once
    lanes.done(["o"])
    lanes.done(["p"], first=True)  # the first writer is free again
    put(lanes, "q-1")
    arrived = time.monotonic()
    taken = lanes.take(RESCUER)
    assert taken is not None and taken[0] == ["q"]
    assert time.monotonic() - arrived >= 0.5  # left to the first writer while it might come
