"""Schema migrations (alembic), run by ``sepa-engine init-db`` and by tests."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config

from sepa_engine.db.session import Database

SCRIPT_LOCATION = "sepa_engine.db:migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    _migrate(db, lambda config: command.upgrade(config, revision))


def downgrade(db: Database, revision: str) -> None:
    _migrate(db, lambda config: command.downgrade(config, revision))


def _migrate(db: Database, step: Callable[[Config], None]) -> None:
    config = _config()
    if not db.is_sqlite:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config)
        return
    # SQLite changes a table's constraints by rebuilding it (alembic's batch mode), and
    # dropping a table others reference fails while foreign keys are enforced. SQLite's own
    # procedure: foreign keys off outside the transaction, then every foreign key checked
    # before the commit, then on again (https://www.sqlite.org/lang_altertable.html).
    with db.engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config)
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows breaking foreign keys: {broken[:10]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def revision(db: Database, message: str) -> None:
    """Developers: autogenerate a migration from the models (``python -m sepa_engine.db.migrate``)."""
    config = _config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    import sys

    revision(Database(sys.argv[1]), sys.argv[2])
