"""The reconciliation workload reports the CPU of the two processes a file is applied in
(bench/returns.py): the engine's, and on PostgreSQL the backend of its one connection, read from
/proc only when that pid is a postgres process of this machine."""

from __future__ import annotations

import json
import os
import sys

import pytest
from sqlalchemy import text

from bench import workloads
from bench.returns import postgres_cpu_seconds


def test_the_cpu_of_the_connections_backend_is_read_on_postgresql_and_of_no_other_process(db) -> None:
    assert postgres_cpu_seconds(None) is None
    assert postgres_cpu_seconds(os.getpid()) is None  # a python process, not a postgres backend
    if db.is_sqlite:
        return
    with db.transaction() as s:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        before = postgres_cpu_seconds(pid)
        s.execute(text("SELECT count(*) FROM generate_series(1, 3000000)")).scalar_one()
        after = postgres_cpu_seconds(pid)
    assert before is not None and after is not None and after > before


def test_a_workload_line_carries_the_figures_a_workload_reports_beside_its_seconds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path,
) -> None:
    monkeypatch.setitem(workloads.WORKLOADS, "fake", lambda count, workdir: {"seconds": 1.234, "engine_cpu_s": 0.5})
    monkeypatch.setattr(sys, "argv", ["bench.workloads", "fake", "10", str(tmp_path)])
    workloads.main()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["name"], line["count"], line["seconds"], line["engine_cpu_s"]) == ("fake", 10, 1.23, 0.5)
