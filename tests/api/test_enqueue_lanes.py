"""The batcher's lanes on their own: one writer per lane at a time, lanes in arrival order,
every call answered before the writers stop (api/batcher.py, ``_Lanes``)."""

from __future__ import annotations

import threading
from typing import Any

from sepa_engine.api import batcher
from sepa_engine.api.batcher import MAX_BATCH, _Lanes


def now(_lane: str) -> int:
    return 1  # a lone caller's lane: the group leaves with what is waiting


def test_a_lane_served_by_one_writer_is_not_given_to_another_until_its_group_is_done() -> None:
    lanes = _Lanes()
    lanes.put("pressimmo", "p1")  # type: ignore[arg-type]
    assert lanes.take(now) == ("pressimmo", ["p1"])
    lanes.put("pressimmo", "p2")  # type: ignore[arg-type]
    lanes.put("other", "o1")  # type: ignore[arg-type]
    # pressimmo's group is still being written: the next writer takes the other creditor.
    assert lanes.take(now) == ("other", ["o1"])
    lanes.done("other")
    lanes.done("pressimmo")
    assert lanes.take(now) == ("pressimmo", ["p2"])


def test_lanes_are_taken_in_the_order_their_first_call_arrived_with_every_call_waiting_in_them() -> None:
    lanes = _Lanes()
    for lane, call in (("b", "b1"), ("a", "a1"), ("b", "b2"), ("c", "c1"), ("a", "a2")):
        lanes.put(lane, call)  # type: ignore[arg-type]
    assert [lanes.take(now) for _ in range(3)] == [("b", ["b1", "b2"]), ("a", ["a1", "a2"]), ("c", ["c1"])]


def test_a_group_holds_at_most_max_batch_calls_and_the_rest_of_its_lane_comes_next() -> None:
    lanes = _Lanes()
    for n in range(MAX_BATCH + 3):
        lanes.put("pressimmo", n)  # type: ignore[arg-type]
    lane, group = lanes.take(now)  # type: ignore[misc]
    assert (lane, group) == ("pressimmo", list(range(MAX_BATCH)))
    lanes.done("pressimmo")
    assert lanes.take(now) == ("pressimmo", [MAX_BATCH, MAX_BATCH + 1, MAX_BATCH + 2])


def test_a_group_smaller_than_expected_takes_the_calls_that_arrive_while_it_lingers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A linger long enough for any machine's scheduler: the group leaves once it has two.
    monkeypatch.setattr(batcher, "LINGER", 30.0)
    lanes = _Lanes()
    lanes.put("pressimmo", "p1")  # type: ignore[arg-type]
    arrived = threading.Event()

    def expected(_lane: str) -> int:
        # The second caller arrives as the writer takes the lane (the condition's lock is
        # released while it lingers, so the put goes through).
        threading.Thread(target=lambda: (lanes.put("pressimmo", "p2"), arrived.set())).start()  # type: ignore[arg-type,func-returns-value]
        return 2

    assert lanes.take(expected) == ("pressimmo", ["p1", "p2"])
    assert arrived.wait(10)


def test_closed_lanes_give_their_waiting_calls_to_the_writers_then_nothing() -> None:
    lanes = _Lanes()
    lanes.put("pressimmo", "p1")  # type: ignore[arg-type]
    lanes.close()
    assert lanes.take(now) == ("pressimmo", ["p1"])
    lanes.done("pressimmo")
    assert lanes.take(now) is None


def test_a_writer_waiting_for_work_wakes_when_a_call_arrives_and_when_the_lanes_close() -> None:
    lanes = _Lanes()
    taken: list[Any] = []
    writer = threading.Thread(target=lambda: taken.extend([lanes.take(now), lanes.take(now)]))
    writer.start()
    lanes.put("pressimmo", "p1")  # type: ignore[arg-type]
    lanes.close()
    writer.join(10)
    assert not writer.is_alive()
    assert taken == [("pressimmo", ["p1"]), None]
