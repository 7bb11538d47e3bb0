"""``make bench``: every benchmark in its own process, results as a Markdown table.

Targets (issues 3, 4, 6 and 8) are checked and printed beside the figures; nothing here is a test, and
nothing fails CI: BENCHMARKS.md records what a run on a named machine showed.

    python -m bench.run [--quick]     # --quick: 10x smaller sizes, to try the harness
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _run(name: str, count: int, workdir: Path, *extra: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.workloads", name, str(count), str(workdir), *map(str, extra)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _api(quick: bool) -> list[dict]:
    """bench.api in its own process: a uvicorn server (two on PostgreSQL) and 16 loopback clients."""
    from bench.ledger import PG_SERVER

    env = {**os.environ}
    env.setdefault("SEPA_ENGINE_BENCH_DATABASE_URL", PG_SERVER)
    out = subprocess.run(
        [sys.executable, "-m", "bench.api", *(["--quick"] if quick else [])],
        check=True, capture_output=True, text=True, env=env,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    quick = "--quick" in sys.argv
    small, large = (10_000, 100_000) if quick else (100_000, 1_000_000)
    workdir = Path(tempfile.mkdtemp(prefix="sepa-bench-"))
    rows: list[tuple[str, dict]] = []
    try:
        sepaxml = _run("sepaxml", small, workdir)
        rows.append(("sepaxml 2.7 export, no validation", sepaxml))
        spooled = _run("ours", small, workdir)
        rows.append(("ours, spooled (totals unknown), XSD-validated", spooled))
        planned = _run("ours-planned", small, workdir)
        rows.append(("ours, planned (totals from the ledger), XSD-validated", planned))
        planned_large = _run("ours-planned", large, workdir)
        rows.append(("ours, planned, large", planned_large))
        spooled_large = _run("ours", large, workdir)
        rows.append(("ours, spooled, large", spooled_large))
        verify_large = _run("verify", large, workdir)
        rows.append(("verify on the large file", verify_large))
        collect_sqlite = _run("collect-sqlite", small, workdir)
        rows.append(("collection run on SQLite (claim, validate, write, validate, record, publish)", collect_sqlite))
        collect_pg = _run("collect-postgresql", small, workdir)
        rows.append(("collection run on PostgreSQL", collect_pg))
        collect_large = _run("collect-sqlite", large, workdir)
        rows.append(("collection run on SQLite, large", collect_large))
        enqueue_sqlite = _run("enqueue-sqlite", small, workdir)
        rows.append(("batch enqueue through the Python API, SQLite", enqueue_sqlite))
        enqueue_pg = _run("enqueue-postgresql", small, workdir)
        rows.append(("batch enqueue through the Python API, PostgreSQL", enqueue_pg))
        # Returns into a ledger of `large` published debits; the smaller file shows memory.
        reconcile_small = _run("reconcile-sqlite", small // 10, workdir, large)
        rows.append((f"reconcile a camt.054 of returns into {large:,} debits, SQLite", reconcile_small))
        reconcile_large = _run("reconcile-sqlite", small, workdir, large)
        rows.append((f"reconcile a camt.054 of returns into {large:,} debits, SQLite, large", reconcile_large))
        api = _api(quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"Machine: {_machine()}")
    print(f"Date: {dt.date.today().isoformat()}\n")
    print("| workload | transactions | seconds | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['count']:,} | {r['seconds']} | {r['peak_rss_mb']} |")
    print()
    print("| HTTP API enqueue, 16 clients on 127.0.0.1 | processes | requests | per second | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in api:
        print(f"| {r['name']} | {r['processes']} | {r['count']:,} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")
    print()
    print("Targets:")
    print(f"- planned vs sepaxml at {small:,}: {sepaxml['seconds'] / planned['seconds']:.1f}x faster (target >= 3x)")
    print(f"- spooled vs sepaxml at {small:,}: {sepaxml['seconds'] / spooled['seconds']:.1f}x faster")
    for label, a, b in (("planned", planned, planned_large), ("spooled", spooled, spooled_large)):
        rss = b["peak_rss_mb"]
        growth = b["peak_rss_mb"] - a["peak_rss_mb"]
        print(f"- {label} {large:,}: peak RSS {rss} MB (target < 60), growth from {small:,}: {growth:.1f} MB (target < 10)")
    print(f"- verify {large:,}: {verify_large['seconds']} s (target < 30 s), peak RSS {verify_large['peak_rss_mb']} MB")
    print(f"- collection run {small:,} on SQLite: {collect_sqlite['seconds']} s (target < 20 s); PostgreSQL: {collect_pg['seconds']} s")
    print(f"- collection run {large:,} on SQLite: peak RSS {collect_large['peak_rss_mb']} MB (target < 200 MB)")
    print(f"- enqueue {small:,} through the Python API on SQLite: {enqueue_sqlite['seconds']} s (target < 10 s); PostgreSQL: {enqueue_pg['seconds']} s")
    print(
        f"- reconcile {small:,} returns into {large:,} debits on SQLite: {reconcile_large['seconds']} s (target < 20 s), "
        f"peak RSS {reconcile_large['peak_rss_mb']} MB vs {reconcile_small['peak_rss_mb']} MB at {small // 10:,}"
    )
    for r in api:
        print(f"- HTTP API on {r['name'].rsplit('-', 1)[-1]} ({r['processes']} process(es)): {r['per_second']} enqueues/s "
              f"(target >= 1,000), p99 {r['p99_ms']} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
