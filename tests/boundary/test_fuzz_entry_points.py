"""Fuzzing the entry points that write: enqueue files and HTTP requests (body, path,
headers). A refusal names the problem and changes nothing; nothing answers 5xx."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import given
from sqlalchemy import func, select

from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.session import Database
from sepa_engine.services import file_enqueue
from tests import accounts_world as world
from tests.boundary.fuzzing import FUZZ, refuses_cleanly
from tests.boundary.test_fuzz_parsers import HOSTILE_TEXT

MANDATE = "RUM-PRE-AG-1"
FIELD_VALUES = st.one_of(HOSTILE_TEXT, st.sampled_from([MANDATE, "10.00", "-1", "0.001", "2999-01-01", "1e9", ""]),
                         st.integers(), st.booleans(), st.none())
RECORDS = st.fixed_dictionaries(
    {"idempotency_key": st.one_of(st.text(min_size=1, max_size=12), FIELD_VALUES), "mandate": FIELD_VALUES, "amount": FIELD_VALUES},
    optional={"remittance": FIELD_VALUES, "requested_date": FIELD_VALUES, "final": FIELD_VALUES, "zzz": FIELD_VALUES},
)


def _count(db: Database) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(DebitRequest)) or 0


def test_fuzzed_enqueue_files_are_applied_whole_or_not_at_all(db: Database, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    clock = FixedClock(world.NOW)

    @FUZZ
    @given(records=st.lists(st.one_of(RECORDS.map(json.dumps), HOSTILE_TEXT), min_size=1, max_size=6))
    def check(records: list[str]) -> None:
        path = tmp_path_factory.mktemp("enqueue") / "requests.jsonl"
        path.write_text("\n".join(r.replace("\n", " ").replace("\r", " ") for r in records) + "\n", "utf-8", "surrogatepass")
        before = _count(db)
        try:
            with db.transaction() as session:
                report = refuses_cleanly(lambda: file_enqueue.enqueue_file(session, path, creditor="pressimmo", clock=clock))
                if report is None:
                    raise _RollBack
        except _RollBack:
            assert _count(db) == before  # refused: the ledger did not change
            return
        assert _count(db) == before + report.created

    check()


class _RollBack(Exception):
    pass


def test_fuzzed_http_requests_never_get_a_server_error(db: Database, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from sepa_engine.api.app import create_app
    from sepa_engine.api.settings import ApiSettings
    from sepa_engine.config import Settings
    from tests.api.conftest import make_token

    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    token = make_token(db, "fuzz", ["pressimmo"], "write")
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    app = create_app(settings, db, world.clock(), ApiSettings(max_body_bytes=64 * 1024, token_cache_seconds=0))
    paths = ["/v1/creditors/pressimmo/debit-requests", "/v1/creditors/pressimmo/debtor-accounts",
             "/v1/creditors/pressimmo/accounts/AG-1/entries", "/v1/creditors/pressimmo/debtor-accounts/{x}"]
    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)

    with TestClient(app, raise_server_exceptions=False) as client:
        @FUZZ
        @given(path=st.sampled_from(paths), segment=HOSTILE_TEXT, body=st.one_of(RECORDS.map(json.dumps), HOSTILE_TEXT),
               key=header_text, content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", ""]),
               auth=st.one_of(st.just(f"Bearer {token}"), header_text))
        def check(path: str, segment: str, body: str, key: str, content_type: str, auth: str) -> None:
            from urllib.parse import quote

            url = path.replace("{x}", quote(segment.encode("utf-8", "surrogatepass"), safe=""))
            # Bytes: a header may carry any Latin-1 octet on the wire, which str headers cannot.
            headers = {"Authorization": auth.encode("latin-1"), "Idempotency-Key": key.encode("latin-1"),
                       "Content-Type": content_type.encode("latin-1")}
            answer = client.post(url, content=body.encode("utf-8", "surrogatepass"), headers=headers)
            assert answer.status_code < 500, (url, answer.status_code, answer.text[:300])

        check()
