"""Database fixtures: every ledger test runs on SQLite, and on PostgreSQL too when
SEPA_ENGINE_TEST_DATABASE_URL names a server (CI sets it). Each test gets a migrated, empty
ledger of its own, made from a template migrated once per session (once per xdist worker):
PostgreSQL clones a template database, SQLite copies a template file. A full alembic upgrade
per test cost three times the test itself.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sepa_engine.db import migrate
from sepa_engine.db.session import Database

PG_URL = os.environ.get("SEPA_ENGINE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_counter = itertools.count()


def _admin_engine():
    return create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    name = f"sepa_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(str(make_url(PG_URL).set(database=name)))
    migrate.upgrade(db)
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    # The last connection closed checkpoints the WAL into the file: the copy is the whole ledger.
    db.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    if request.param == "sqlite":
        ledger = tmp_path / "ledger.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), ledger)
        yield f"sqlite:///{ledger}"
        return
    name = f"sepa_t_{os.getpid()}_{next(_counter)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield str(make_url(PG_URL).set(database=name))
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _logs_to_stderr():
    # Library code logs through structlog; keep stdout for the documents commands print.
    from sepa_engine import logs

    logs.configure(json_lines=True)
