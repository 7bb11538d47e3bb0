"""Fixtures the service tests share; a module that needs other settings defines its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from sepa_engine.config import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
