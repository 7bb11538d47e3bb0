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
    with pytest.raises(errors.ConfigurationError, match=r"engine\.chunksize is not a known key"):
        load_settings(path)


def test_unknown_time_zone_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[engine]\ntimezone = "Europe/Pariss"\n')
    with pytest.raises(errors.ConfigurationError, match=r"engine\.timezone"):
        load_settings(path)


def test_environment_overrides_the_database_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPA_ENGINE_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    assert load_settings(EXAMPLE).database_url == "postgresql://x@127.0.0.1/y"


def _write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_the_example_documents_every_key_the_loader_knows():
    from sepa_engine.config import _JOB_KEYS, _KEYS, JOB_NAMES

    text = EXAMPLE.read_text()
    for section, keys in _KEYS.items():
        assert f"[{section}]" in text
        for key in keys - {"jobs"}:
            assert f"\n{key} = " in text, f"{section}.{key} is not in the example"
    for key in _JOB_KEYS:
        assert f"#   {key} " in text
    for name in JOB_NAMES:
        assert f"#   {name} " in text


def test_the_example_schedules_the_nightly_run_on_weekdays_in_paris():
    scheduler = load_settings(EXAMPLE).scheduler
    assert scheduler.timezone == "Europe/Paris" and scheduler.misfire_grace_seconds == 21600
    assert [(j.name, j.cron) for j in scheduler.enabled_jobs()] == [("nightly", "30 22 * * 1-5")]


def test_scheduler_time_zone_defaults_to_the_engine_one(tmp_path):
    settings = load_settings(_write(tmp_path, '[engine]\ntimezone = "Europe/Berlin"\n'))
    assert settings.scheduler_timezone == "Europe/Berlin"
    assert [j.name for j in settings.scheduler.enabled_jobs()] == ["nightly"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[scheduler.jobs.collect]\ncron = "61 22 * * *"\n',
         r"scheduler.jobs.collect.cron '61 22 \* \* \*' is not a valid crontab line: .*maximum value \(59\)"),
        ('[scheduler.jobs.collect]\ncron = "30 22 * *"\n', "scheduler.jobs.collect.cron"),
        ('[scheduler.jobs.collect]\ncron = "30 22 1 * 1-5"\n', "scheduler.jobs.collect.cron"),
        ('[scheduler.jobs.collect]\nenabled = true\n', "scheduler.jobs.collect.cron"),
        ('[scheduler.jobs.inbox]\ncron = "* * * * 8"\n', "scheduler.jobs.inbox.cron"),
        ('[scheduler.jobs.collect]\ncron = "30 22 * * *"\nenabled = "yes"\n', "scheduler.jobs.collect.enabled"),
        ('[scheduler.jobs.collect]\ncron = "30 22 * * *"\ncorn = "x"\n', "scheduler.jobs.collect.corn is not a known key"),
        ('[scheduler.jobs.colect]\ncron = "30 22 * * *"\n', r"\[scheduler.jobs.colect\] is not a known job"),
        ('[scheduler]\ntimezone = "Mars/Olympus"\n', "scheduler.timezone"),
        ('[scheduler]\nlock_wait = 3\n', "scheduler.lock_wait is not a known key"),
        ('[scheduler]\nlock_wait_seconds = -1\n', "scheduler.lock_wait_seconds"),
        ('[scheduler]\nmisfire_grace_seconds = 0\n', "scheduler.misfire_grace_seconds"),
        ('[scheduler]\njobs = 3\n', r"\[scheduler.jobs\] must be a table"),
    ],
)
def test_a_wrong_scheduler_setting_stops_start_up_naming_it(tmp_path, text, named):
    with pytest.raises(errors.ConfigurationError, match=named):
        load_settings(_write(tmp_path, text))


def test_listed_jobs_replace_the_default_and_disabled_ones_stay_off(tmp_path):
    scheduler = load_settings(_write(tmp_path, (
        '[scheduler]\nlock_wait_seconds = 2.5\n'
        '[scheduler.jobs.collect]\ncron = "0 21 * * mon-fri"\n'
        '[scheduler.jobs.inbox]\ncron = "*/10 * * * *"\nenabled = false\n'
    ))).scheduler
    assert scheduler.lock_wait_seconds == 2.5
    assert [j.name for j in scheduler.jobs] == ["collect", "inbox"]
    assert [j.name for j in scheduler.enabled_jobs()] == ["collect"]


def test_a_typo_in_the_api_table_stops_every_command_not_only_the_api(tmp_path):
    config = tmp_path / "sepa-engine.toml"
    config.write_text('[api]\nprot = 8080\n')
    with pytest.raises(errors.ConfigurationError, match=r"api\.prot.*not a known key"):
        load_settings(config)


def test_the_example_api_table_is_what_the_api_starts_with():
    from sepa_engine.api.settings import ApiSettings, load_api_settings

    assert load_api_settings(EXAMPLE) == ApiSettings("127.0.0.1", 8080, 1_048_576, 1.0)
