"""Engine settings from a TOML file, with environment overrides for deployment.

Lookup order for the file: ``--config`` on the command line, ``SEPA_ENGINE_CONFIG``, then
``config/sepa-engine.toml`` if present; without any file the embedded defaults apply
(SQLite under ``var/``). ``SEPA_ENGINE_DATABASE_URL`` overrides ``database.url``. Unknown
keys are refused by name: a typo must not silently fall back to a default.

The file is read into ``ConfigFile`` (pydantic, strict): every key typed and bounded, so
``chunk_size = "big"``, ``lock_wait_seconds = -1``, ``nan`` or ``inf`` and ``outbox_dir = 7``
stop every command with exit code 64 and one line naming the key and the rule. The
database URL must be one SQLAlchemy reads and name a backend the engine runs on (SQLite or
PostgreSQL); whether that database answers is checked when a command opens it
(``cli/context.py``: exit code 69 when it does not).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sepa_engine import errors
from sepa_engine.clock import DEFAULT_TIMEZONE

DEFAULT_CONFIG_PATH = Path("config/sepa-engine.toml")

# The jobs ``serve`` can run. ``nightly`` is collect, schedules and inbox in that order, as
# ``run-nightly`` runs them; the single jobs let an operator run one more often (the inbox).
JOB_NAMES = ("nightly", "collect", "schedules", "inbox")
DEFAULT_JOBS: tuple[tuple[str, str], ...] = (("nightly", "30 22 * * 1-5"),)
DEFAULT_MISFIRE_GRACE_SECONDS = 6 * 3600


@dataclass(frozen=True, slots=True)
class JobSchedule:
    name: str
    cron: str  # 5-field crontab line, read in the scheduler's time zone
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    # Time zone of the cron expressions; None = the engine's time zone.
    timezone: str | None = None
    # How long a second ``serve`` or ``run-nightly`` waits for the holder of the ledger
    # before it exits with "lock busy" (seconds; 0 = do not wait).
    lock_wait_seconds: float = 0.0
    # How late a missed run may still start (seconds); later ones are skipped, and missed
    # slots are always coalesced into one run.
    misfire_grace_seconds: int = DEFAULT_MISFIRE_GRACE_SECONDS
    jobs: tuple[JobSchedule, ...] = tuple(JobSchedule(name, cron) for name, cron in DEFAULT_JOBS)

    def enabled_jobs(self) -> tuple[JobSchedule, ...]:
        return tuple(job for job in self.jobs if job.enabled)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus exposition of the ledger's facts (``sepa_engine/metrics.py``)."""

    # ``serve``'s own endpoint: 0 = off (the default); on ``address`` (loopback by default,
    # so nothing is exposed beyond the machine unless the operator says so).
    port: int = 0
    address: str = "127.0.0.1"
    # node_exporter textfile written by ``run-nightly`` after each run; None = none.
    textfile: Path | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite:///var/sepa-engine.db"
    var_dir: Path = Path("var")
    outbox_dir: Path = Path("var/outbox")
    # Bank answers to reconcile; imported files move to processed/ or failed/ under it.
    inbox_dir: Path = Path("var/inbox")
    timezone: str = DEFAULT_TIMEZONE
    # How long a second collection run waits for the first before giving up (seconds).
    lock_wait_seconds: float = 0.0
    # Requests read from the ledger per round trip during a run.
    chunk_size: int = 5_000
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @property
    def scheduler_timezone(self) -> str:
        return self.scheduler.timezone or self.timezone


# --- the file, as a model ------------------------------------------------------------------
# Every key typed and bounded (pydantic, strict: TOML's "5000" is not 5000, true is not 1);
# a bad value stops every command with exit code 64 naming the key and the rule in words.
class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_Seconds = Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)]
_Text = Annotated[str, Field(min_length=1, max_length=4_096)]


class DatabaseTable(_Table):
    url: _Text | None = None


class PathsTable(_Table):
    var_dir: _Text | None = None
    outbox_dir: _Text | None = None
    inbox_dir: _Text | None = None


class EngineTable(_Table):
    timezone: _Text = DEFAULT_TIMEZONE
    lock_wait_seconds: _Seconds = 0.0
    chunk_size: Annotated[int, Field(ge=1, le=1_000_000)] = 5_000


class JobTable(_Table):
    cron: _Text
    enabled: bool = True


class SchedulerTable(_Table):
    timezone: _Text | None = None
    lock_wait_seconds: _Seconds = 0.0
    misfire_grace_seconds: Annotated[int, Field(ge=1, le=7 * 86_400)] = DEFAULT_MISFIRE_GRACE_SECONDS
    jobs: dict[str, JobTable] | None = None


class ApiTable(_Table):
    # Values are checked by ``api/settings.py`` when the API starts (host, port and body
    # limit have their own words there); only the names are checked here, so a typo in
    # [api] stops every command, not only ``api serve``.
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    host: object = None
    port: object = None
    max_body_bytes: object = None
    token_cache_seconds: object = None
    lock_wait_seconds: object = None


class MetricsTable(_Table):
    port: Annotated[int, Field(ge=0, le=65_535)] = 0
    address: _Text = "127.0.0.1"
    textfile: _Text | None = None


class ConfigFile(_Table):
    database: DatabaseTable = DatabaseTable()
    paths: PathsTable = PathsTable()
    engine: EngineTable = EngineTable()
    scheduler: SchedulerTable = SchedulerTable()
    api: ApiTable = ApiTable()
    metrics: MetricsTable = MetricsTable()


_SECTIONS: dict[str, type[_Table]] = {
    "database": DatabaseTable, "paths": PathsTable, "engine": EngineTable, "scheduler": SchedulerTable, "api": ApiTable,
    "metrics": MetricsTable,
}
_KEYS = {section: set(model.model_fields) for section, model in _SECTIONS.items()}
_JOB_KEYS = set(JobTable.model_fields)
# Database backends the engine runs on (SQLAlchemy backend names); the same code and tests
# run on both.
BACKENDS = ("sqlite", "postgresql")


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    chosen = path or os.environ.get("SEPA_ENGINE_CONFIG")
    data: dict[str, object] = {}
    if chosen:
        data = _read(Path(chosen))
    elif DEFAULT_CONFIG_PATH.exists():
        data = _read(DEFAULT_CONFIG_PATH)
    _check_jobs_names(data)
    try:
        file = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise _configuration_error(exc, data) from None
    var_dir = Path(file.paths.var_dir or "var")
    settings = Settings(
        database_url=file.database.url or f"sqlite:///{var_dir}/sepa-engine.db",
        var_dir=var_dir,
        outbox_dir=Path(file.paths.outbox_dir) if file.paths.outbox_dir else var_dir / "outbox",
        inbox_dir=Path(file.paths.inbox_dir) if file.paths.inbox_dir else var_dir / "inbox",
        timezone=file.engine.timezone,
        lock_wait_seconds=float(file.engine.lock_wait_seconds),
        chunk_size=file.engine.chunk_size,
        scheduler=_scheduler(file.scheduler),
        metrics=_metrics(file.metrics),
    )
    check_database_url("database.url", settings.database_url)
    env_url = os.environ.get("SEPA_ENGINE_DATABASE_URL")
    if env_url:
        check_database_url("SEPA_ENGINE_DATABASE_URL", env_url)
        settings = dataclasses.replace(settings, database_url=env_url)
    _validate(settings)
    return settings


def check_database_url(key: str, url: str) -> None:
    """A URL SQLAlchemy can read, naming a backend the engine runs on; the password is never shown."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise errors.ConfigurationError(
            key, None, "is not a database URL (e.g. sqlite:///var/sepa-engine.db or postgresql://user@host:5432/name)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise errors.ConfigurationError(
            key, None, f"names the database {backend!r}, which the engine does not run on (it runs on {' and '.join(BACKENDS)})"
        )


def _metrics(table: MetricsTable) -> MetricsSettings:
    # Types and the port's range are the model's; the textfile's suffix is node_exporter's rule.
    textfile = table.textfile
    if textfile is not None and not textfile.endswith(".prom"):
        raise errors.ConfigurationError("metrics.textfile", textfile, "must be a file path ending in .prom (node_exporter reads only those)")
    return MetricsSettings(table.port, table.address, Path(textfile) if textfile else None)


def _read(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise errors.ConfigurationError("config", str(path), "does not exist") from None
    except IsADirectoryError:
        raise errors.ConfigurationError("config", str(path), "is a folder, not a file") from None
    except OSError as exc:
        raise errors.ConfigurationError("config", str(path), f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise errors.ConfigurationError("config", str(path), f"is not UTF-8 text (byte {exc.start + 1}); TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigurationError("config", str(path), f"is not valid TOML: {exc}") from None


def _check_jobs_names(data: dict[str, object]) -> None:
    scheduler = data.get("scheduler")
    jobs = scheduler.get("jobs") if isinstance(scheduler, dict) else None
    if jobs is None:
        return
    if not isinstance(jobs, dict):
        raise errors.ConfigurationError("[scheduler.jobs]", None, "must be a table of [scheduler.jobs.<name>] tables")
    for name in jobs:
        if name not in JOB_NAMES:
            raise errors.ConfigurationError(
                f"[scheduler.jobs.{name}]", None, f"is not a known job (known: {', '.join(JOB_NAMES)})"
            )


def _configuration_error(exc: ValidationError, data: dict[str, object]) -> errors.ConfigurationError:
    """The first problem pydantic found, as "key value rule" with the rule in words."""
    first = exc.errors(include_url=False)[0]
    location = [str(part) for part in first["loc"]]
    key = ".".join(location)
    kind, context = first["type"], first.get("ctx") or {}
    value = first.get("input")
    shown = value if isinstance(value, (bool, int, float, str)) and kind != "extra_forbidden" else None
    if kind == "extra_forbidden":
        parent = location[:-1]
        known = _JOB_KEYS if len(parent) == 3 else _KEYS.get(parent[0], set()) if parent else set(_KEYS)
        if not parent:
            return errors.ConfigurationError(f"[{location[0]}]", None, f"is not a known section (known: {', '.join(sorted(_KEYS))})")
        return errors.ConfigurationError(key, None, f"is not a known key (known: {', '.join(sorted(known))})")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return errors.ConfigurationError(f"[{key}]", None, "must be a table")
    if kind == "missing":
        return errors.ConfigurationError(key, None, _MISSING.get(location[-1], "is required"))
    rule = _RULES.get(kind)
    if rule is None:
        rule = first["msg"].replace("Input should", "should").replace("String should", "should")
    else:
        rule = rule.format(**{name: _number(limit) for name, limit in context.items()})
    return errors.ConfigurationError(key, shown, rule)


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_RULES = {
    "int_type": "must be a whole number (without quotes)",
    "float_type": "must be a number (without quotes)",
    "string_type": "must be text in quotes",
    "bool_type": "must be true or false",
    "finite_number": "must be a finite number (nan and inf are not numbers of seconds)",
    "greater_than_equal": "must be {ge} or more",
    "less_than_equal": "must be {le} or less",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters long",
}
_MISSING = {"cron": "must be a 5-field crontab line such as \"30 22 * * 1-5\""}


def _scheduler(table: SchedulerTable) -> SchedulerSettings:
    """The [scheduler] section. Without a [scheduler.jobs] table the defaults apply
    (``nightly`` on weekdays at 22:30); with one, exactly the jobs it lists are scheduled."""
    if table.jobs is None:
        return SchedulerSettings(table.timezone, float(table.lock_wait_seconds), table.misfire_grace_seconds)
    jobs = tuple(JobSchedule(name, job.cron, job.enabled) for name, job in table.jobs.items())
    return SchedulerSettings(table.timezone, float(table.lock_wait_seconds), table.misfire_grace_seconds, jobs)


def _validate(settings: Settings) -> None:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.ConfigurationError("engine.timezone", settings.timezone, "is not a known time zone") from None
    zone = settings.scheduler_timezone
    if settings.scheduler.timezone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise errors.ConfigurationError("scheduler.timezone", zone, "is not a known time zone") from None
    # Imported here: APScheduler is needed only once a [scheduler] is read.
    from sepa_engine.crontab import CrontabError, cron_trigger

    for job in settings.scheduler.jobs:
        try:
            cron_trigger(job.cron, zone)
        except CrontabError as exc:
            raise errors.ConfigurationError(f"scheduler.jobs.{job.name}.cron", job.cron, f"is not a valid crontab line: {exc}") from None
