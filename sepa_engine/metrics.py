"""Prometheus metrics, all named ``sepa_engine_*`` and listed in README.md ("Metrics").

Two kinds, served three ways:

* **Ledger facts** (``LedgerCollector``): read from the ledger at each scrape, so every
  process that can reach the ledger tells the same story: the last run of each job and
  its outcome, the files written per creditor and status with their transactions and
  amounts, returns and rejects by reason code, open exceptions, files awaiting approval.
  Nothing is kept in memory between scrapes, so a cron run (which lives a minute) and
  ``serve`` (which lives for months) expose the same numbers.
* **API traffic** (``ApiMetrics``): requests and latencies by route, debit requests
  enqueued, refusals by code and ISO/EPC reason code; counted by the API process.

The API serves both at ``/metrics``; ``serve`` serves the ledger facts on its own port
(``[metrics] port``, off by default, on 127.0.0.1 unless ``address`` says otherwise);
``run-nightly`` writes them as a node_exporter textfile (``[metrics] textfile``),
atomically (prometheus_client writes a temporary file and renames it).

Money is exported in cents (integers, exact in a float up to 2**53), never in euros.
prometheus_client is the Prometheus project's own Python client: its exposition format
and textfile writer are the reference ones, which a hand-written exporter would have to
re-implement.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sepa_engine.db.repositories import jobs as jobs_repo
from sepa_engine.db.repositories import metrics as repo
from sepa_engine.db.session import Database

PREFIX = "sepa_engine"
# Without this, every counter and histogram series gets a twin "<name>_created" gauge (when
# the series was first seen): in the text format Prometheus stores it as one more metric per
# series, undocumented and of no use to an alert.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
# Statuses of a file the bank has (or had): what "written" counts. PLANNED and FAILED
# files were never handed over; AWAITING_APPROVAL ones are written but held.
_NOT_WRITTEN = frozenset({"planned", "failed"})
_OUTCOMES = ("ok", "nothing_to_do", "partial", "failed", "interrupted")
_LEDGER_UP = "1 when the ledger's database answered this scrape, 0 when it did not (its facts are then left out)."


class LedgerCollector(Collector):
    """The ledger's facts, read at each scrape (a handful of aggregate queries)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        try:
            with self._db.reader() as session:
                runs = jobs_repo.last_runs(session)
                files = repo.files_by_creditor_and_status(session)
                returns = repo.returns_by_reason(session)
                open_exceptions = jobs_repo.open_exceptions(session)
        except (OperationalError, InterfaceError):
            # A database that does not answer is a fact to alert on, not a failed scrape: the
            # API's own counters still show what its callers met meanwhile (503s).
            yield GaugeMetricFamily(f"{PREFIX}_ledger_up", _LEDGER_UP, 0)
            return
        yield GaugeMetricFamily(f"{PREFIX}_ledger_up", _LEDGER_UP, 1)
        yield from _job_metrics(runs)
        yield from _file_metrics(files)
        yield from _return_metrics(returns)
        yield GaugeMetricFamily(f"{PREFIX}_open_exceptions", "Bank records waiting in the exceptions queue for a person.", open_exceptions)


def _job_metrics(runs: Any) -> Iterator[Metric]:
    finished = GaugeMetricFamily(
        f"{PREFIX}_job_last_run_timestamp_seconds", "When the last run of each job ended (Unix time).", labels=["job"]
    )
    outcome = GaugeMetricFamily(
        f"{PREFIX}_job_last_run_outcome",
        "Outcome of the last run of each job: 1 on its outcome, 0 on the others.",
        labels=["job", "outcome"],
    )
    exit_code = GaugeMetricFamily(f"{PREFIX}_job_last_run_exit_code", "Exit code of the last run of each job.", labels=["job"])
    for run in runs:
        if run.finished_at is None:
            continue  # still running (or crashed): its last finished run is not known here
        finished.add_metric([run.job], run.finished_at.timestamp())
        for name in _OUTCOMES:
            outcome.add_metric([run.job, name], 1.0 if run.outcome == name else 0.0)
        if run.exit_code is not None:
            exit_code.add_metric([run.job], run.exit_code)
    yield from (finished, outcome, exit_code)


def _file_metrics(rows: list[repo.FilesRow]) -> Iterator[Metric]:
    by_status = GaugeMetricFamily(f"{PREFIX}_files", "Files in the ledger by creditor and status.", labels=["creditor", "status"])
    files = CounterMetricFamily(f"{PREFIX}_files_written", "Files written for the bank (held or handed over).", labels=["creditor"])
    transactions = CounterMetricFamily(
        f"{PREFIX}_transactions_written", "Debits in the files written for the bank.", labels=["creditor"]
    )
    amount = CounterMetricFamily(
        f"{PREFIX}_amount_written_cents", "Amount of the files written for the bank, in euro cents.", labels=["creditor"]
    )
    awaiting = GaugeMetricFamily(f"{PREFIX}_files_awaiting_approval", "Files held until someone approves them.", labels=["creditor"])
    written: dict[str, list[int]] = {}
    held: dict[str, int] = {}
    for row in rows:
        by_status.add_metric([row.creditor, row.status], row.files)
        held.setdefault(row.creditor, 0)
        if row.status == jobs_repo.AWAITING_APPROVAL:
            held[row.creditor] += row.files
        if row.status not in _NOT_WRITTEN:
            totals = written.setdefault(row.creditor, [0, 0, 0])
            totals[0] += row.files
            totals[1] += row.transactions
            totals[2] += row.cents
    for creditor, (count, debits, cents) in sorted(written.items()):
        files.add_metric([creditor], count)
        transactions.add_metric([creditor], debits)
        amount.add_metric([creditor], cents)
    for creditor, count in sorted(held.items()):
        awaiting.add_metric([creditor], count)
    yield from (by_status, files, transactions, amount, awaiting)


def _return_metrics(rows: list[repo.ReturnsRow]) -> Iterator[Metric]:
    count = CounterMetricFamily(
        f"{PREFIX}_returns",
        "Bank records applied against debits, by kind (rejected, returned, refunded, reversed) and reason code.",
        labels=["kind", "reason_code"],
    )
    amount = CounterMetricFamily(
        f"{PREFIX}_returns_amount_cents", "Amount of those records, in euro cents.", labels=["kind", "reason_code"]
    )
    for row in rows:
        count.add_metric([row.kind, row.reason_code], row.count)
        amount.add_metric([row.kind, row.reason_code], row.cents)
    yield from (count, amount)


def ledger_registry(db: Database) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(db))
    return registry


def write_textfile(db: Database, path: Path) -> None:
    """The ledger facts as a node_exporter textfile, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), ledger_registry(db))


def serve_ledger_metrics(db: Database, port: int, address: str) -> Any:
    """Serve the ledger facts on ``address:port`` in a daemon thread (``serve``)."""
    return start_http_server(port, addr=address, registry=ledger_registry(db))


# --- the API ---------------------------------------------------------------------------------

METRICS_PATH = "/metrics"
ENQUEUE_ROUTES = frozenset({"/v1/creditors/{creditor}/debit-requests", "/v1/group-payments"})
_PROBLEM = b"application/problem+json"


class ApiMetrics:
    """The API process's own counters, in its registry beside the ledger facts."""

    def __init__(self, db: Database) -> None:
        self.registry = ledger_registry(db)
        self.requests = Counter(
            f"{PREFIX}_http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds", "Time to answer an HTTP request, by method and route template.",
            ["method", "route"], registry=self.registry,
        )
        self.enqueued = Counter(
            f"{PREFIX}_api_enqueued", "Debit requests accepted by the API (new ones, not replays), by route.",
            ["route"], registry=self.registry,
        )
        self.refusals = Counter(
            f"{PREFIX}_api_refusals", "Requests the API refused, by the engine's error code and ISO/EPC reason code.",
            ["code", "reason_code"], registry=self.registry,
        )


class MetricsMiddleware:
    """Counts every request by its route template (never the raw path: ids would make a
    label per creditor and request) and reads the code of every problem answered.

    It also answers ``GET /metrics`` itself, without a token like ``/v1/health``: keep the
    API on an internal address (``api.host``) or filter ``/metrics`` at the proxy."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, fast_path: re.Pattern[str], fast_route: str) -> None:
        self.app = app
        self.metrics = metrics
        self._fast_path = fast_path
        self._fast_route = fast_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") == METRICS_PATH and scope.get("method") == "GET":
            await self._expose(send)
            return
        started = time.perf_counter()
        status = 500
        replayed = False
        problem = False
        body: list[bytes] = []

        async def watch(message: Message) -> None:
            nonlocal status, replayed, problem
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", ()))
                replayed = headers.get(b"idempotent-replayed") == b"true"
                problem = headers.get(b"content-type", b"").startswith(_PROBLEM)
            elif message["type"] == "http.response.body" and problem:
                body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = self._route(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            if method == "POST" and route in ENQUEUE_ROUTES and status in (200, 201) and not replayed:
                self.metrics.enqueued.labels(route).inc()
            if problem:
                code, reason = _problem_codes(b"".join(body))
                self.metrics.refusals.labels(code, reason).inc()

    async def _expose(self, send: Send) -> None:
        # The ledger's queries block (up to the connect timeout when the database is away):
        # off the event loop, as the routes' queries are.
        body = await run_in_threadpool(generate_latest, self.metrics.registry)
        headers = [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        if self._fast_path.fullmatch(scope.get("path", "")):
            return self._fast_route
        return "unmatched"


def _problem_codes(body: bytes) -> tuple[str, str]:
    try:
        document = json.loads(body)
    except ValueError:
        return "unknown", "none"
    if not isinstance(document, dict):
        return "unknown", "none"
    return str(document.get("code") or "unknown")[:40], str(document.get("reason_code") or "none")[:8]
