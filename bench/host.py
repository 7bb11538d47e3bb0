"""How fast the host ran Python during a workload: a figure to read the others by.

The bench machines are shared virtual machines whose speed moves in phases: a fixed loop
takes 33–37 ms for seconds at a time, then 55–65 ms, on either core and whatever the hash
seed, with nothing in ``vmstat`` to show for it (BENCHMARKS.md, 2026-12-06 late morning).
The same workload on the same code took 7.4 s and then 10.6 s an hour later. So a workload
runs beside a ``Sampler``: a child process that times the loop once a second and reports the
median. Two figures are comparable when their host figures are close; an A/B pair whose host
figures differ by more than the gain says nothing. The sampler's own cost is one loop a
second, about 5 % of one core.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

INTERVAL_S = 1.0


def loop() -> int:
    # Dict lookups, string formatting and integer arithmetic: what the engine's own Python does.
    counts: dict[str, int] = {}
    for i in range(200_000):
        key = f"k{i % 1_000}"
        counts[key] = counts.get(key, 0) + i
    return len(counts)


def timed_loop_ms() -> float:
    started = time.perf_counter()
    loop()
    return (time.perf_counter() - started) * 1000


class Sampler:
    """Times ``loop`` once a second in a child process until stopped; ``stop`` returns the
    median in milliseconds (lower is faster), or None if no sample was taken."""

    def __init__(self) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "bench.host"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def stop(self) -> float | None:
        out, _ = self._child.communicate("stop\n", timeout=30)
        samples = json.loads(out or "[]")
        return round(statistics.median(samples), 1) if samples else None


def _sample_until_stopped() -> None:
    """Sample until the parent writes a line or goes away (stdin readable either way), then
    print the samples as one JSON list."""
    import select

    samples: list[float] = []
    while True:
        samples.append(timed_loop_ms())
        ready, _, _ = select.select([sys.stdin], [], [], INTERVAL_S)
        if ready:
            break
    print(json.dumps(samples))


if __name__ == "__main__":
    _sample_until_stopped()
