"""Database fixtures: every ledger test runs on SQLite, and on PostgreSQL too when
SEPA_ENGINE_TEST_DATABASE_URL names a server (CI sets it). Each test gets a migrated, empty
ledger, made from a template migrated once per session (once per xdist worker). A full alembic
upgrade per test cost three times the test itself.

SQLite copies the template file per test. PostgreSQL clones the template once per worker and
empties that database before each test (DELETE from every table, sequences back to 1): a
CREATE DATABASE ... TEMPLATE and a DROP per test cost 1 to 4 s under load against some 20 ms
for the reset (BENCHMARKS.md, "Test suite, 2026-12-04 night"). A test that left the schema
changed, or whose connections hold locks past the reset's timeout, gets a fresh clone instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from sepa_engine.db import migrate
from sepa_engine.db.session import Database

PG_URL = os.environ.get("SEPA_ENGINE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


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


# What a reset checks first: the schema the template had (a test that altered it gets a new clone).
_SCHEMA_FINGERPRINT = text(
    "SELECT (SELECT string_agg(version_num, ',') FROM alembic_version) || ':' || md5(string_agg("
    " c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY c.relname, a.attnum))"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped"
)


class PgWorkerLedger:
    """One database per xdist worker, cloned from the template, emptied before each test."""

    def __init__(self, admin: Engine, template: str) -> None:
        self.admin = admin
        self.template = template
        self.name = f"sepa_w_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.url = str(make_url(PG_URL).set(database=self.name))
        self._clone()
        engine = self._engine()
        try:
            metadata = MetaData()
            metadata.reflect(engine)
            with engine.connect() as conn:
                self.fingerprint = conn.execute(_SCHEMA_FINGERPRINT).scalar_one()
                seeded = [t.name for t in metadata.sorted_tables
                          if t.name != "alembic_version" and conn.execute(text(f'SELECT 1 FROM "{t.name}" LIMIT 1')).first()]
                sequences = conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).scalars().all()
        finally:
            engine.dispose()
        # Rows a migration inserts would be lost by the reset: clone per test again if one ever does.
        assert not seeded, f"the migrated template has rows in {seeded}: the per-test DELETE would remove them"
        # Children before parents, so every DELETE passes the foreign keys.
        deletes = [f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"]
        restarts = [f"SELECT setval('\"{name}\"', 1, false)" for name in sequences]
        self._reset_sql = "; ".join(deletes + restarts)

    def _engine(self) -> Engine:
        return create_engine(make_url(self.url).set(drivername="postgresql+psycopg"), poolclass=NullPool)

    def _clone(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template}"'))

    def reset(self) -> None:
        engine = self._engine()
        try:
            with engine.begin() as conn:
                # Connections the last test left open (a killed subprocess, an undisposed engine)
                # would hold locks the DELETEs wait on, and advisory locks a next test would see.
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                  " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
                conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                if conn.execute(_SCHEMA_FINGERPRINT).scalar_one() != self.fingerprint:
                    raise LookupError("schema changed")
                conn.exec_driver_sql(self._reset_sql)
            return
        except (DBAPIError, LookupError):
            pass
        finally:
            engine.dispose()
        self._clone()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_ledger(pg_template: str | None) -> Iterator[PgWorkerLedger]:
    assert pg_template is not None
    admin = _admin_engine()
    ledger = PgWorkerLedger(admin, pg_template)
    yield ledger
    ledger.drop()
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        ledger = tmp_path / "ledger.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), ledger)
        yield f"sqlite:///{ledger}"
        return
    pg = request.getfixturevalue("pg_ledger")
    pg.reset()
    yield pg.url


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
