"""Regressions of issue 15: configuration and database failures were tracebacks or were
accepted silently. Each is now one line on stderr and a documented exit code: 64 for the
configuration (naming the key and the rule), 69 for a database that does not answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sepa_engine import errors
from sepa_engine.cli.main import app
from sepa_engine.config import load_settings
from sepa_engine.exit_codes import ExitCode

runner = CliRunner()


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "sepa-engine.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (b"[engine]\ntimezone = \"Europe/Paris\xe9\"\n", r"config .* is not UTF-8 text \(byte 34\)"),
        ('[engine]\nchunk_size = "big"\n', r"engine.chunk_size 'big' must be a whole number"),
        ("[engine]\nchunk_size = 0\n", "engine.chunk_size 0 must be 1 or more"),
        ("[engine]\nlock_wait_seconds = -1\n", "engine.lock_wait_seconds -1 must be 0 or more"),
        ("[engine]\nlock_wait_seconds = nan\n", "engine.lock_wait_seconds nan must be a finite number"),
        ("[engine]\nlock_wait_seconds = inf\n", "engine.lock_wait_seconds inf must be a finite number"),
        ("[scheduler]\nlock_wait_seconds = nan\n", "scheduler.lock_wait_seconds nan must be a finite number"),
        ("[paths]\noutbox_dir = 7\n", "paths.outbox_dir 7 must be text in quotes"),
        ('[paths]\nvar_dir = ""\n', "paths.var_dir '' must not be empty"),
        ("[engine]\ntimezone = 3\n", "engine.timezone 3 must be text in quotes"),
        ('[database]\nurl = "not a url"\n', "database.url is not a database URL"),
        ('[database]\nurl = "mysql://u@h/db"\n', "database.url names the database 'mysql', which the engine does not run on"),
        ("[api]\nhots = 1\n", r"api.hots is not a known key"),
        ("[engine]\n[engin]\n", r"\[engin\] is not a known section"),
    ],
)
def test_a_bad_configuration_value_is_refused_naming_the_key_and_the_rule(tmp_path: Path, text: str | bytes, named: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=named):
        load_settings(_write(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [b"[engine]\nchunk_size = \"big\"\n", b"\xff\xfe[database]\n", b'[database]\nurl = "mysql://u:secret@h/db"\n',
     b'[database]\nurl = "::::"\n', b"[engine]\nlock_wait_seconds = inf\n"],
)
def test_every_command_exits_64_with_one_line_on_a_bad_configuration_never_a_traceback(tmp_path: Path, text: bytes) -> None:
    config = _write(tmp_path, text)
    for command in (["load", str(tmp_path)], ["requests", "list"], ["init-db"], ["run-nightly"]):
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == ExitCode.USAGE, (command, result.output)
        assert isinstance(result.exception, SystemExit), (command, result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "secret" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_postgresql_exits_69_with_one_line_and_no_password(tmp_path: Path) -> None:
    url = f"postgresql://sepa:hunter2@127.0.0.1:{_closed_port()}/sepa"
    config = _write(tmp_path, f'[database]\nurl = "{url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n')
    for command in (["requests", "list"], ["init-db"], ["collect"], ["run-nightly"], ["enqueue", str(config)]):
        result = runner.invoke(app, [*command, "--config", str(config)], env={"SEPA_ENGINE_DATABASE_URL": ""})
        assert result.exit_code == ExitCode.UNAVAILABLE == 69, (command, result.output)
        assert isinstance(result.exception, SystemExit), (command, result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: database"), (command, result.stderr)
        assert "did not answer" in lines[0] and "hunter2" not in result.stderr


def test_the_environment_database_url_is_checked_like_the_file_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEPA_ENGINE_DATABASE_URL", "oracle://x@y/z")
    with pytest.raises(errors.ConfigurationError, match="SEPA_ENGINE_DATABASE_URL names the database 'oracle'"):
        load_settings(_write(tmp_path, ""))


def test_the_example_states_the_bounds_the_model_enforces() -> None:
    from annotated_types import Ge, Le

    from sepa_engine.config import EngineTable, SchedulerTable

    example = (Path(__file__).resolve().parents[2] / "config" / "sepa-engine.example.toml").read_text()
    for model in (EngineTable, SchedulerTable):
        for name, field in model.model_fields.items():
            bounds = {type(m): m for m in field.metadata if isinstance(m, (Ge, Le))}
            if Le not in bounds:
                continue
            low, high = int(bounds[Ge].ge), int(bounds[Le].le)
            assert f"{low} to {high}" in example or f"at most {high}" in example, (model.__name__, name)
            with pytest.raises(errors.ConfigurationError, match=f"{name} .*must be {high} or less"):
                load_settings(_write_example_with(model, name, high + 1))


def _write_example_with(model: type, name: str, value: float) -> Path:
    import tempfile

    section = {"EngineTable": "engine", "SchedulerTable": "scheduler"}[model.__name__]
    path = Path(tempfile.mkdtemp()) / "sepa-engine.toml"
    path.write_text(f"[{section}]\n{name} = {int(value)}\n")
    return path
