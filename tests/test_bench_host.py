"""The bench's host figure (bench/host.py): sampled beside a workload in a child process,
and reported with the workload's own figures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.host import Sampler

ROOT = Path(__file__).resolve().parents[1]


def test_the_sampler_reports_the_median_of_the_loop_times_it_took() -> None:
    sampler = Sampler()
    time.sleep(0.2)
    median = sampler.stop()
    assert median is not None and 0 < median < 10_000


def test_a_workload_line_carries_the_host_figure_beside_its_seconds(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.workloads", "ours-planned", "200", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line["name"] == "ours-planned" and line["count"] == 200
    assert line["host_loop_ms"] > 0
