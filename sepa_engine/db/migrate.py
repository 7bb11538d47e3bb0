"""Schema migrations (alembic), run by ``sepa-engine init-db`` and by tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from sepa_engine.db.session import Database

SCRIPT_LOCATION = "sepa_engine.db:migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    config = _config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision(db: Database, message: str) -> None:
    """Developers: autogenerate a migration from the models (``python -m sepa_engine.db.migrate``)."""
    config = _config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    import sys

    revision(Database(sys.argv[1]), sys.argv[2])
