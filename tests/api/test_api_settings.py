from __future__ import annotations

from pathlib import Path

import pytest

from sepa_engine import errors
from sepa_engine.api.settings import ApiSettings, load_api_settings


def test_without_an_api_table_the_api_listens_on_loopback(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[database]\nurl = "sqlite://"\n')
    assert load_api_settings(config) == ApiSettings("127.0.0.1", 8080, 1_048_576)


def test_the_api_table_sets_host_port_and_body_limit(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[api]\nhost = "0.0.0.0"\nport = 9000\nmax_body_bytes = 2048\n')
    assert load_api_settings(config) == ApiSettings("0.0.0.0", 9000, 2048)


@pytest.mark.parametrize(
    ("table", "field"),
    [('prot = 80', "api.prot"), ('port = "80"', "api.port"), ("port = 70000", "api.port"),
     ("max_body_bytes = 10", "api.max_body_bytes"), ('host = ""', "api.host")],
)
def test_unknown_keys_and_bad_values_are_refused_by_name(tmp_path: Path, table: str, field: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[api]\n{table}\n")
    with pytest.raises(errors.ConfigurationError) as caught:
        load_api_settings(config)
    assert caught.value.field == field


def test_the_api_waits_sixty_seconds_for_a_lock_unless_the_api_table_says_otherwise(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[api]\n")
    assert load_api_settings(config).lock_wait_seconds == 60.0
    config.write_text("[api]\nlock_wait_seconds = 15\n")
    assert load_api_settings(config).lock_wait_seconds == 15.0


@pytest.mark.parametrize("value", ["0", "-1", "601", '"15"', "true"])
def test_a_lock_wait_outside_a_tenth_of_a_second_to_ten_minutes_is_refused_by_name(tmp_path: Path, value: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[api]\nlock_wait_seconds = {value}\n")
    with pytest.raises(errors.ConfigurationError) as caught:
        load_api_settings(config)
    assert caught.value.field == "api.lock_wait_seconds"
    assert "from 0.1 to 600" in str(caught.value)
