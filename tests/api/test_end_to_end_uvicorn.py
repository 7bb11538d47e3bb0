"""The real thing: ``sepa-engine api`` under uvicorn on a free loopback port, an enqueue over
HTTP, a collection run, and the request found in the published pain.008 file."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.session import Database
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import accounts_world as world
from tests.api.conftest import make_token
from tests.api.test_busy_ledger_api import reconciliation_holding_the_mandate

SCRIPT = Path(sys.executable).parent / "sepa-engine"
LOCK_WAIT = 0.5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    config = tmp_path / "sepa-engine.toml"
    config.write_text(
        f'[database]\nurl = "{db.url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n[api]\nlock_wait_seconds = {LOCK_WAIT}\n'
    )
    port = free_port()
    env = {**os.environ, "SEPA_ENGINE_LOG_LEVEL": "warning"}
    env.pop("SEPA_ENGINE_DATABASE_URL", None)
    process = subprocess.Popen(
        [str(SCRIPT), "api", "--config", str(config), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                _out, err = process.communicate(timeout=5)
                raise AssertionError(f"the API did not start: {err.decode()[-2000:]}")
            time.sleep(0.1)
        yield base, tmp_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_request_enqueued_over_http_is_in_the_published_file(db: Database, server: tuple[str, Path]) -> None:
    base, tmp_path = server
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    token = make_token(db, "billing", ["pressimmo"], "write")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "e2e-1"}
    body = {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "remittance": "Facture F-76", "requested_date": "2026-12-15", "on_account": True}
    with httpx.Client(base_url=base, timeout=10) as client:
        created = client.post("/v1/creditors/pressimmo/debit-requests", json=body, headers=headers)
        assert created.status_code == 201, created.text
        end_to_end_id = created.json()["end_to_end_id"]

        settings = Settings(database_url=db.url, var_dir=tmp_path / "var", outbox_dir=tmp_path / "var" / "outbox")
        report = run_collection(
            db, settings, FixedClock(dt.datetime(2026, 12, 14, 8, 0, tzinfo=dt.timezone.utc)), SequentialIds("E2E"),
            business_date=dt.date(2026, 12, 14),
        )
        assert len(report.files) == 1
        published = report.files[0].path
        ids = etree.parse(str(published)).xpath("//*[local-name()='EndToEndId']/text()")
        assert ids == [end_to_end_id]

        read = client.get(f"/v1/creditors/pressimmo/debit-requests/{created.json()['id']}", headers=headers)
        assert read.json()["status"] == "submitted"
        batch_id = read.json()["batch_id"]
        file = client.get(f"/v1/creditors/pressimmo/batches/{batch_id}/file", headers=headers)
        assert file.status_code == 200
        assert file.content == published.read_bytes()


def test_the_served_api_waits_its_configured_lock_wait_for_a_held_mandate_then_answers_ledger_busy(
    db: Database, server: tuple[str, Path],
) -> None:
    base, _tmp_path = server
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    token = make_token(db, "billing", ["pressimmo"], "write")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "e2e-busy"}
    body = {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "on_account": True}
    with httpx.Client(base_url=base, timeout=30) as client:
        with reconciliation_holding_the_mandate(db):
            busy = client.post("/v1/creditors/pressimmo/debit-requests", json=body, headers=headers)
        assert busy.status_code == 503, busy.text
        assert busy.json()["code"] == "ledger_busy"
        assert "for 0.5 s" in busy.json()["detail"]  # [api] lock_wait_seconds reached the process
        created = client.post("/v1/creditors/pressimmo/debit-requests", json=body, headers=headers)
        assert created.status_code == 201, created.text
