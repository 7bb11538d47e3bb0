"""Calls started at the same moment on threads of their own, for the tests of races."""

from __future__ import annotations

import threading
from collections.abc import Callable


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
