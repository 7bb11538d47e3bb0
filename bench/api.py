"""HTTP API enqueue benchmark (issue 8): 16 concurrent clients posting debit requests to
``sepa-engine api`` on 127.0.0.1, bounded in count and time.

    python -m bench.api [--quick] [--backend sqlite|postgresql|all] [--count N] [--seconds S] [--creditors N]
                        [--pays invoice|balance] [--history MONTHS]

SQLite: one API process. PostgreSQL (``SEPA_ENGINE_BENCH_DATABASE_URL``, else
``SEPA_ENGINE_TEST_DATABASE_URL``; a scratch database is created and dropped): two API
processes on two ports sharing one ledger, the clients spread across them. Load goes to
127.0.0.1 only. Prints a readable summary on stderr and one JSON line per backend on stdout
(``name``, ``count``, ``seconds``, ``per_second``, ``p50_ms``, ``p99_ms``...), like the other
workloads. Target: at least 1,000 enqueues per second with p99 under 50 ms.

What each request pays (``--pays``): ``invoice`` (the default, and what ``make bench``
runs) carries the invoice it pays, as a billing system sends it, so each account gains an
invoice (and a debit in flight) per request, a past that grows with the run; ``balance`` names
nothing and pays part of what each account owes (one large invoice booked beforehand),
as pay-now and the schedule do. ``--history`` gives each account that many settled months
beforehand (an invoice and the credit note that settles it), the past its position is made of.

The clients share the machine with the server, so they cost as little as possible: one
asyncio loop, 16 kept-alive connections, requests rendered beforehand (each with its own
Idempotency-Key), raw HTTP/1.1. A request's latency runs from its send to the last byte of
its answer. The JSON line also gives the CPU per request and the share of the machine of
the server(s) and of the clients. Afterwards the ledger must hold exactly the requests
answered 201, once each (no lost or doubled write), else the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.parallel import creditor_identifier
from sepa_engine import logs
from sepa_engine.clock import FixedClock
from sepa_engine.db import migrate
from sepa_engine.db.models import DebtorAccount, LedgerEntry
from sepa_engine.db.session import Database
from sepa_engine.services import accounts, api_tokens, registry
from sepa_engine.services.account_inputs import LedgerEntryInput
from sepa_engine.services.inputs import AddressInput, CreditorInput, DebtorAccountInput, MandateInput

CLIENTS = 16
MANDATES = 200
IBAN = "DE89370400440532013000"
CLOCK = FixedClock(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc))
SCRIPT = Path(sys.executable).parent / "sepa-engine"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _code(creditor: int) -> str:
    return "bench" if creditor == 0 else f"bench-{creditor}"


def _ledger(url: str, pays: str = "invoice", history: int = 0, creditors: int = 1) -> str:
    """Migrate, register ``creditors`` creditors with MANDATES mandates between them (mandate
    n is creditor n % creditors's; and, for ``pays="balance"``, an invoice each that the debits
    pay part of, and ``history`` settled months), return a write token for all of them."""
    # Only the JSON lines on stdout: the services' log lines of the set-up go nowhere.
    logs.configure(level=logging.WARNING)
    db = Database(url)
    try:
        migrate.upgrade(db)
        with db.transaction() as s:
            for creditor in range(creditors):
                registry.register_creditor(
                    s, CreditorInput(code=_code(creditor), name="Bench SA",
                                     creditor_identifier="FR72ZZZ123456" if creditor == 0 else creditor_identifier(creditor),
                                     iban="FR7630006000011234567890189", address=AddressInput(country="FR", town="Paris")),
                    idempotency_key=f"creditor-{_code(creditor)}", clock=CLOCK,
                )
            for n in range(MANDATES):
                code = _code(n % creditors)
                registry.register_debtor_account(s, code, DebtorAccountInput(reference=f"A-{n}", name=f"Debtor {n}"),
                                                 idempotency_key=f"account-{n}", clock=CLOCK)
                registry.register_mandate(s, code, MandateInput(reference=f"RUM-{n}", debtor_account=f"A-{n}",
                                                                signed_on=dt.date(2025, 1, 15), iban=IBAN),
                                          idempotency_key=f"mandate-{n}", clock=CLOCK)
                if pays == "balance":
                    accounts.record_entry(s, code, f"A-{n}", LedgerEntryInput(
                        kind="invoice", number=f"ROLL-{n}", issue_date=dt.date(2026, 11, 1), amount="1000000.00",
                    ), idempotency_key=f"roll-{n}", clock=CLOCK)
            if history:
                _history(s, history)
            return api_tokens.create_token(
                s, name="bench", creditors=[_code(c) for c in range(creditors)], access="write", clock=CLOCK,
            ).token
    finally:
        db.dispose()


def _history(session: Session, months: int) -> None:
    """``months`` monthly invoices per account, each settled by a credit note that names it:
    a past the gate must replay for an account's position, written straight to the table
    (the services would log and check each of 2 x 200 x ``months`` entries)."""
    accounts_of = dict(session.execute(select(DebtorAccount.id, DebtorAccount.creditor_id)).all())
    first = (session.scalar(select(func.max(LedgerEntry.id))) or 0) + 1
    rows = []
    for account_id, creditor_id in accounts_of.items():
        for month in range(months):
            issued = dt.date(2024, 1, 1) + dt.timedelta(days=30 * month)
            invoice_id, credit_id = first + len(rows), first + len(rows) + 1
            common = {"creditor_id": creditor_id, "debtor_account_id": account_id, "issue_date": issued,
                      "amount_cents": 100_000, "created_at": CLOCK.now()}
            rows.append({**common, "id": invoice_id, "kind": "invoice", "document_number": f"H-{invoice_id}",
                         "applies_to_id": None})
            rows.append({**common, "id": credit_id, "kind": "credit_note", "document_number": f"H-{credit_id}",
                         "applies_to_id": invoice_id})
    session.execute(insert(LedgerEntry), rows)


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SEPA_ENGINE_LOG_LEVEL": "warning"}
    env.pop("SEPA_ENGINE_DATABASE_URL", None)
    process = subprocess.Popen([str(SCRIPT), "api", "--config", str(config), "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            break
    process.kill()
    raise SystemExit(f"the API did not start on port {port}: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")


def _requests(token: str, count: int, pays: str = "invoice", creditors: int = 1) -> list[bytes]:
    """Every request rendered beforehand (a unique Idempotency-Key each), so that sending one
    costs the client a write and nothing else."""
    head = (f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n").encode()
    rendered = []
    for index in range(count):
        fields = {"mandate": f"RUM-{index % MANDATES}", "amount": f"{index % 900 + 1}.00", "remittance": f"Invoice {index}"}
        if pays == "invoice":
            # The request carries the invoice it pays, as a billing system sends it (README).
            fields.update(invoice_number=f"B-{index}", invoice_issue_date="2026-11-01")
        body = json.dumps(fields).encode()
        path = f"/v1/creditors/{_code(index % MANDATES % creditors)}/debit-requests"
        rendered.append(f"POST {path} HTTP/1.1\r\n".encode() + head
                        + f"Idempotency-Key: bench-{index}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return rendered


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request on a kept-alive connection and read its whole answer; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    else:
        raise RuntimeError(f"no Content-Length in the answer: {head[:200]!r}")
    if length:
        await reader.readexactly(length)
    return status


async def _clients(ports: list[int], requests: list[bytes], seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    cursor = iter(requests)
    connections = [await asyncio.open_connection("127.0.0.1", ports[worker % len(ports)]) for worker in range(CLIENTS)]
    for reader, writer in connections:  # warm each connection (not measured)
        await _exchange(reader, writer, b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    stop_at = time.monotonic() + seconds

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        clock = time.perf_counter
        for request in cursor:  # shared: each request is sent exactly once, by one client
            began = clock()
            status = await _exchange(reader, writer, request)
            latencies.append(clock() - began)
            if status != 201:
                errors += 1
            if time.monotonic() >= stop_at:
                return

    began = time.perf_counter()
    await asyncio.gather(*(client(reader, writer) for reader, writer in connections))
    elapsed = time.perf_counter() - began
    for _reader, writer in connections:
        writer.close()
    return latencies, errors, elapsed


def _load(
    ports: list[int], token: str, count: int, seconds: float, pays: str, creditors: int = 1,
) -> tuple[list[float], int, float, float]:
    """CLIENTS concurrent keep-alive connections in one asyncio loop (uvloop when installed),
    raw HTTP/1.1 over ``asyncio.open_connection``: the load generator shares the machine's
    cores with the server, so it must cost as little as possible per request. The latency
    of a request is from its send to the last byte of its answer. Returns the latencies,
    the errors, the wall time and the client's CPU seconds."""
    requests = _requests(token, count, pays, creditors)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    # No collection pauses in the client while it measures: this process holds the whole
    # engine (it built the ledger), and a full collection walking it stalled all sixteen
    # clients at once, which showed as slow requests of the server.
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu = time.process_time()
    try:
        latencies, errors, elapsed = runner(_clients(ports, requests, seconds))
    finally:
        gc.enable()
        gc.unfreeze()
    return latencies, errors, elapsed, time.process_time() - cpu


def _ledger_counts(url: str) -> tuple[int, int, int]:
    """Debit requests, distinct idempotency keys among them, and stored API answers."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg") if url.startswith("postgresql") else url)
    try:
        with engine.connect() as conn:
            requests, keys = conn.execute(text("SELECT count(*), count(DISTINCT idempotency_key) FROM debit_requests")).one()
            answers = conn.execute(text("SELECT count(*) FROM api_idempotency")).scalar_one()
    finally:
        engine.dispose()
    return int(requests), int(keys), int(answers)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (Linux /proc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(
    backend: str, url: str, workdir: Path, count: int, seconds: float, pays: str = "invoice", history: int = 0,
    creditors: int = 1,
) -> dict[str, object]:
    token = _ledger(url, pays, history, creditors)
    config = workdir / f"{backend}.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[paths]\nvar_dir = "{workdir / "var"}"\n')
    processes = 1 if backend == "sqlite" else 2
    ports = [_free_port() for _ in range(processes)]
    servers = [_start(config, port) for port in ports]
    cpu_before = [_cpu_seconds(server.pid) for server in servers]
    try:
        latencies, errors, elapsed, client_cpu = _load(ports, token, count, seconds, pays, creditors)
        server_cpu = sum(_cpu_seconds(server.pid) for server in servers) - sum(cpu_before)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    done = len(latencies)
    # Exactly the requests answered were written, once each: none lost, none doubled.
    requests, keys, answers = _ledger_counts(url)
    if not requests == keys == answers == done - errors:
        raise SystemExit(f"{backend}: {done - errors} enqueues answered 201 but the ledger holds {requests} debit "
                         f"requests ({keys} keys) and {answers} stored answers")
    cores = os.cpu_count() or 1
    name = f"api-enqueue-{backend}" if pays == "invoice" else f"api-enqueue-{pays}-{backend}"
    if history:
        name += f"-history-{history}"
    if creditors > 1:
        name += f"-creditors-{creditors}"
    result = {
        "name": name, "count": done, "seconds": round(elapsed, 2),
        "per_second": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1) if latencies else None,
        "clients": CLIENTS, "processes": processes, "errors": errors,
        "server_cpu_ms_per_request": round(server_cpu / done * 1000, 2) if done else None,
        "client_cpu_ms_per_request": round(client_cpu / done * 1000, 2) if done else None,
        # Shares of the machine (all its cores) over the run.
        "server_cpu_share": round(server_cpu / (elapsed * cores), 2) if elapsed else None,
        "client_cpu_share": round(client_cpu / (elapsed * cores), 2) if elapsed else None,
        "ledger_rows": requests,
    }
    print(f"{backend}: {done} enqueues in {elapsed:.1f} s over {processes} process(es): {result['per_second']}/s, "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {errors} error(s); "
          f"CPU per request: server {result['server_cpu_ms_per_request']} ms, client {result['client_cpu_ms_per_request']} ms "
          f"(shares of {cores} cores: server {result['server_cpu_share']}, client {result['client_cpu_share']}); "
          f"ledger: {requests} requests, as answered", file=sys.stderr)
    return result


def _pg_database(base: str) -> tuple[str, str]:
    name = f"sepa_bench_api_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(make_url(base).set(database=name)), name


def _drop(base: str, name: str) -> None:
    admin = create_engine(make_url(base).set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 requests or 10 s, to try the harness")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--count", type=int, default=None, help="requests (default 20,000; --quick 2,000)")
    parser.add_argument("--seconds", type=float, default=None, help="time bound (default 60; --quick 10)")
    parser.add_argument("--pays", choices=("invoice", "balance"), default="invoice",
                        help="what each request pays: the invoice it carries (default) or part of the balance")
    parser.add_argument("--creditors", type=int, default=1,
                        help="creditors the requests are spread over, round robin (their mandates too)")
    parser.add_argument("--history", type=int, default=0,
                        help="settled months each account has before the run (an invoice and its credit note each)")
    args = parser.parse_args()
    count = args.count or (2_000 if args.quick else 20_000)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    pg_base = os.environ.get("SEPA_ENGINE_BENCH_DATABASE_URL") or os.environ.get("SEPA_ENGINE_TEST_DATABASE_URL")
    workdir = Path(tempfile.mkdtemp(prefix="sepa-bench-api-"))
    try:
        if args.backend in ("sqlite", "all"):
            print(json.dumps(run("sqlite", f"sqlite:///{workdir}/ledger.db", workdir, count, seconds, args.pays, args.history, args.creditors)), flush=True)
        if args.backend in ("postgresql", "all"):
            if not pg_base:
                print("postgresql: skipped (set SEPA_ENGINE_BENCH_DATABASE_URL)", file=sys.stderr)
            else:
                url, name = _pg_database(pg_base)
                try:
                    print(json.dumps(run("postgresql", url, workdir, count, seconds, args.pays, args.history, args.creditors)), flush=True)
                finally:
                    _drop(pg_base, name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
