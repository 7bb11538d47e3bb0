from __future__ import annotations

from pathlib import Path

import pytest

from sepa_engine import errors
from sepa_engine.config import load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "sepa-engine.example.toml"


def test_the_documented_example_loads():
    settings = load_settings(EXAMPLE)
    assert settings.database_url == "sqlite:///var/sepa-engine.db"
    assert settings.timezone == "Europe/Paris"


def test_unknown_key_is_refused_by_name(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[engine]\ntimezone = "Europe/Paris"\nchunksize = 10\n')
    with pytest.raises(errors.ConfigurationError, match="engine.chunksize is not a known key"):
        load_settings(path)


def test_unknown_time_zone_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[engine]\ntimezone = "Europe/Pariss"\n')
    with pytest.raises(errors.ConfigurationError, match="engine.timezone"):
        load_settings(path)


def test_environment_overrides_the_database_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPA_ENGINE_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    assert load_settings(EXAMPLE).database_url == "postgresql://x@127.0.0.1/y"
