"""A running API whose database goes away answers 503 problem+json (never 500), and answers
as before once it is back, without a restart.

PostgreSQL goes away for real: the API reaches it through a TCP relay the test closes
(every connection cut, new ones refused) and opens again. SQLite's ledger goes away as a
volume does: its folder disappears and the process's connections with it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from sepa_engine.api.app import create_app
from sepa_engine.api.settings import ApiSettings
from sepa_engine.config import Settings
from sepa_engine.db.session import Database
from tests import accounts_world as world
from tests.api.conftest import make_token

BASE = "/v1/creditors/pressimmo"
REQUEST = {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "remittance": "Facture F-1", "on_account": True}


class Relay:
    """127.0.0.1:<port> -> the database server, byte for byte, until ``cut``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)


class Outage:
    """Takes the API's database away and brings it back."""

    def __init__(self, db: Database, tmp_path: Path) -> None:
        url = make_url(db.url)
        self.relay: Relay | None = None
        self.folder: Path | None = None
        if db.is_sqlite:
            db.dispose()  # the last connection checkpoints the WAL: the file is the whole ledger
            self.folder = tmp_path / "volume"
            self.folder.mkdir()
            shutil.copyfile(str(url.database), self.folder / "ledger.db")
            self.url = f"sqlite:///{self.folder / 'ledger.db'}"
        else:
            self.relay = Relay(url.host or "127.0.0.1", url.port or 5432)
            self.relay.open()
            self.url = url.set(host="127.0.0.1", port=self.relay.port).render_as_string(hide_password=False)
        self.api_db = Database(self.url)

    def down(self) -> None:
        if self.relay is not None:
            self.relay.cut()
            return
        assert self.folder is not None
        self.folder.rename(self.folder.with_name("volume-away"))
        self.api_db.dispose()  # the connections went with the volume

    def up(self) -> None:
        if self.relay is not None:
            self.relay.open()
            return
        assert self.folder is not None
        self.folder.with_name("volume-away").rename(self.folder)

    def close(self) -> None:
        self.api_db.dispose()
        if self.relay is not None:
            self.relay.cut()


@pytest.fixture
def outage(db: Database, tmp_path: Path) -> Iterator[tuple[Outage, TestClient, dict[str, str]]]:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    tokens = {
        "write": make_token(db, "billing", ["pressimmo"], "write"),
        "read": make_token(db, "portal-read", ["pressimmo"], "read"),
    }
    found = Outage(db, tmp_path)
    settings = Settings(database_url=found.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    app = create_app(settings, found.api_db, world.clock(), ApiSettings(token_cache_seconds=0))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield found, client, tokens
    finally:
        found.close()


def _headers(token: str, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}


def _ledger_up(client: TestClient) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        if family.name == "sepa_engine_ledger_up":
            return family.samples[0].value
    raise AssertionError("no sepa_engine_ledger_up")


def _served_503(client: TestClient) -> float:
    total = 0.0
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "sepa_engine_http_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["status"] == "503")
    return total


def test_a_database_that_goes_away_answers_503_problems_and_the_api_recovers_when_it_is_back(outage) -> None:
    found, client, tokens = outage
    write, read = tokens["write"], tokens["read"]
    assert client.get(f"{BASE}/debit-requests", headers=_headers(read)).status_code == 200
    assert client.post(f"{BASE}/debit-requests", json=REQUEST, headers=_headers(write, "before")).status_code == 201
    assert _ledger_up(client) == 1

    found.down()
    calls = {
        "list (a route)": lambda: client.get(f"{BASE}/debit-requests", headers=_headers(read)),
        "enqueue (the fast path)": lambda: client.post(f"{BASE}/debit-requests", json=REQUEST, headers=_headers(write, "during")),
        "enqueue (the route)": lambda: client.post(f"{BASE}/debit-requests?x=1", json=REQUEST, headers=_headers(write, "during")),
        "creditors": lambda: client.get("/v1/creditors", headers=_headers(read)),
    }
    for name, call in calls.items():
        response = call()
        assert response.status_code == 503, (name, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", name
        assert response.headers["retry-after"] == "5", name
        problem = response.json()
        assert (problem["status"], problem["code"]) == (503, "database_unavailable"), (name, problem)
        assert "did not answer" in problem["detail"], problem
    assert client.get("/v1/health").status_code == 200  # liveness never touches the ledger
    assert _ledger_up(client) == 0
    assert _served_503(client) == len(calls)

    found.up()
    assert client.get(f"{BASE}/debit-requests", headers=_headers(read)).status_code == 200
    # The key refused with 503 stored nothing: the same call now enqueues.
    again = client.post(f"{BASE}/debit-requests", json=REQUEST, headers=_headers(write, "during"))
    assert again.status_code == 201, again.text
    listed = client.get(f"{BASE}/debit-requests", headers=_headers(read)).json()
    assert len(listed["items"]) == 2
    assert _ledger_up(client) == 1
