"""``make bench``: every benchmark in its own process, results as a Markdown table.

Targets (issues 3, 4, 6, 8 and 16) are checked and printed beside the figures; nothing here is a test, and
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


def _api(quick: bool, *options: str) -> list[dict]:
    """bench.api in its own process: a uvicorn server (two on PostgreSQL) and 16 loopback clients."""
    from bench.ledger import PG_SERVER

    env = {**os.environ}
    env.setdefault("SEPA_ENGINE_BENCH_DATABASE_URL", PG_SERVER)
    out = subprocess.run(
        [sys.executable, "-m", "bench.api", *(["--quick"] if quick else []), *options],
        check=True, capture_output=True, text=True, env=env,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _every_result(rows: list[tuple[str, dict]], side: dict[str, dict[str, dict]], parallel: dict[int, dict]) -> list[dict]:
    return [r for _, r in rows] + [r for pair in side.values() for r in pair.values()] + list(parallel.values())


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
        # What the collection run writes: the bank profile's rules in the same read-back.
        rows.append(("ours, planned, also checked against bank profile epc", _run("ours-planned-profile", small, workdir)))
        planned_large = _run("ours-planned", large, workdir)
        rows.append(("ours, planned, large", planned_large))
        spooled_large = _run("ours", large, workdir)
        rows.append(("ours, spooled, large", spooled_large))
        verify_large = _run("verify", large, workdir)
        rows.append(("verify on the large file", verify_large))
        # The ledger workloads on both backends, side by side (issue 16).
        side: dict[str, dict[str, dict]] = {}
        for backend in ("sqlite", "postgresql"):
            side.setdefault("collect", {})[backend] = _run(f"collect-{backend}", small, workdir)
            side.setdefault("collect-large", {})[backend] = _run(f"collect-{backend}", large, workdir)
            side.setdefault("enqueue", {})[backend] = _run(f"enqueue-{backend}", small, workdir)
            side.setdefault("schedule", {})[backend] = _run(f"schedule-{backend}", small, workdir)
            # The same two on a ledger in use (a month of it), where key checks keep their plans.
            side.setdefault("enqueue-established", {})[backend] = _run(f"enqueue-established-{backend}", small, workdir)
            side.setdefault("schedule-established", {})[backend] = _run(f"schedule-established-{backend}", small, workdir)
            # Returns into a ledger of `large` published debits; the smaller file shows memory.
            side.setdefault("reconcile-small", {})[backend] = _run(f"reconcile-{backend}", small // 10, workdir, large)
            side.setdefault("reconcile", {})[backend] = _run(f"reconcile-{backend}", small, workdir, large)
            # The same returns in the bank's order, which owes nothing to the ledger's ids.
            side.setdefault("reconcile-shuffled", {})[backend] = _run(
                f"reconcile-shuffled-{backend}", small, workdir, large
            )
        parallel = {p: _run("collect-parallel-postgresql", small, workdir, p) for p in (1, 2)}
        # Both paths of the account gate: invoice-carrying requests (each account's past grows
        # with the run) and balance debits on accounts with five years of settled months.
        # And the load spread over four creditors: a group costs the gate's reads per creditor.
        api = _api(quick) + _api(quick, "--pays", "balance", "--history", "60") + _api(quick, "--creditors", "4")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"Machine: {_machine()}")
    print(f"Date: {dt.datetime.now(dt.timezone.utc).date().isoformat()}")
    hosts = [r["host_loop_ms"] for r in _every_result(rows, side, parallel) if r.get("host_loop_ms")]
    if hosts:
        # bench/host.py: the same code ran up to 1.7 times slower in the host's slow phases.
        print(f"Host: a fixed Python loop took {min(hosts)}–{max(hosts)} ms (median per workload; lower is faster)")
    print()
    print("| workload | transactions | seconds | peak RSS MB | host loop ms |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['count']:,} | {r['seconds']} | {r['peak_rss_mb']} | {r.get('host_loop_ms')} |")
    print()
    labels = {
        "collect": f"collection run (claim, validate, write, validate, record, publish, book), {small:,}",
        "collect-large": f"collection run, {large:,}",
        "enqueue": f"batch enqueue through the Python API, {small:,}",
        "schedule": f"automatic schedule (debits, slots, pre-notifications), {small:,} accounts",
        "enqueue-established": f"batch enqueue, {small:,}, into a ledger of as many requests and twice as many invoices",
        "schedule-established": f"the schedule's next month over the same {small:,} accounts",
        "reconcile-small": f"reconcile {small // 10:,} returns into {large:,} debits",
        "reconcile": f"reconcile {small:,} returns into {large:,} debits",
        "reconcile-shuffled": f"the same {small:,} returns in a random order",
    }
    print("| ledger workload | SQLite s | SQLite peak RSS MB | host loop ms | PostgreSQL s | PostgreSQL peak RSS MB | host loop ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, label in labels.items():
        a, b = side[key]["sqlite"], side[key]["postgresql"]
        print(f"| {label} | {a['seconds']} | {a['peak_rss_mb']} | {a.get('host_loop_ms')} "
              f"| {b['seconds']} | {b['peak_rss_mb']} | {b.get('host_loop_ms')} |")
    print()
    print(f"| parallel collection on PostgreSQL, {small:,} requests over 10 creditors | processes | seconds |")
    print("|---|---:|---:|")
    for processes, r in parallel.items():
        print(f"| every process a full run, started together | {processes} | {r['seconds']} |")
    print()
    print("| HTTP API enqueue, 16 clients on 127.0.0.1 | processes | requests | per second | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in api:
        print(f"| {r['name']} | {r['processes']} | {r['count']:,} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")
    print()

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print("Targets:")
    ratio = sepaxml["seconds"] / planned["seconds"]
    print(f"- planned vs sepaxml at {small:,}: {ratio:.1f}x faster (target >= 3.5x): {met(ratio >= 3.5)}")
    ratio = sepaxml["seconds"] / spooled["seconds"]
    print(f"- spooled vs sepaxml at {small:,}: {ratio:.1f}x faster (target >= 3x): {met(ratio >= 3)}")
    for label, a, b in (("planned", planned, planned_large), ("spooled", spooled, spooled_large)):
        rss = b["peak_rss_mb"]
        growth = b["peak_rss_mb"] - a["peak_rss_mb"]
        print(f"- {label} {large:,}: peak RSS {rss} MB (target < 60), growth from {small:,}: {growth:.1f} MB (target < 10)")
    print(f"- verify {large:,}: {verify_large['seconds']} s (target < 30 s), peak RSS {verify_large['peak_rss_mb']} MB")
    c, big = side["collect"], side["collect-large"]
    for backend in ("sqlite", "postgresql"):
        print(f"- collection run {small:,} on {backend}: {c[backend]['seconds']} s (target < 10 s): {met(c[backend]['seconds'] < 10)}")
    print(f"- collection run {small:,}, PostgreSQL no slower than SQLite: "
          f"{met(c['postgresql']['seconds'] <= c['sqlite']['seconds'])}")
    for backend in ("sqlite", "postgresql"):
        r, growth = big[backend], big[backend]["peak_rss_mb"] - c[backend]["peak_rss_mb"]
        print(f"- collection run {large:,} on {backend}: {r['seconds']} s (target < 60 s): {met(r['seconds'] < 60)}; "
              f"peak RSS {r['peak_rss_mb']} MB (target < 200): {met(r['peak_rss_mb'] < 200)}, "
              f"growth from {small:,}: {growth:.1f} MB")
    for backend, key in (("sqlite", "reconcile"), ("postgresql", "reconcile"),
                         ("sqlite", "reconcile-shuffled"), ("postgresql", "reconcile-shuffled")):
        r = side[key][backend]
        order = " (in the ledger's order)" if key == "reconcile" else " (in a random order)"
        # One transaction: its engine process and (PostgreSQL) its one backend take turns, so
        # neither's CPU can be spread over more cores.
        cpu = f"; CPU of the engine process {r.get('engine_cpu_s')} s" + (
            f", of its PostgreSQL backend {r['backend_cpu_s']} s" if r.get("backend_cpu_s") is not None else "")
        print(f"- reconcile {small:,} returns into {large:,} debits{order} on {backend}: {r['seconds']} s (target < 10 s): "
              f"{met(r['seconds'] < 10)}, peak RSS {r['peak_rss_mb']} MB vs {side['reconcile-small'][backend]['peak_rss_mb']} MB"
              f"{cpu}")
    print(f"- parallel collection on PostgreSQL: 1 process {parallel[1]['seconds']} s, 2 processes {parallel[2]['seconds']} s "
          f"({parallel[1]['seconds'] / parallel[2]['seconds']:.2f}x)")
    for r in api:
        print(f"- HTTP API, {r['name']} ({r['processes']} process(es)): {r['per_second']} enqueues/s "
              f"(target >= 1,000), p99 {r['p99_ms']} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
