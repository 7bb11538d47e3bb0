"""Engine settings from a TOML file, with environment overrides for deployment.

Lookup order for the file: ``--config`` on the command line, ``SEPA_ENGINE_CONFIG``, then
``config/sepa-engine.toml`` if present; without any file the embedded defaults apply
(SQLite under ``var/``). ``SEPA_ENGINE_DATABASE_URL`` overrides ``database.url``. Unknown
keys are refused by name: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

    @property
    def scheduler_timezone(self) -> str:
        return self.scheduler.timezone or self.timezone


_KEYS = {
    "database": {"url"},
    "paths": {"var_dir", "outbox_dir", "inbox_dir"},
    "engine": {"timezone", "lock_wait_seconds", "chunk_size"},
    "scheduler": {"timezone", "lock_wait_seconds", "misfire_grace_seconds", "jobs"},
    # Values are checked by ``api/settings.py`` when the API starts; names are checked here,
    # so a typo in [api] stops every command, not only ``api serve``.
    "api": {"host", "port", "max_body_bytes", "token_cache_seconds"},
}
_JOB_KEYS = {"cron", "enabled"}


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    chosen = path or os.environ.get("SEPA_ENGINE_CONFIG")
    data: dict[str, dict[str, object]] = {}
    if chosen:
        data = _read(Path(chosen))
    elif DEFAULT_CONFIG_PATH.exists():
        data = _read(DEFAULT_CONFIG_PATH)
    _check_keys(data)
    var_dir = Path(str(data.get("paths", {}).get("var_dir", "var")))
    settings = Settings(
        database_url=str(data.get("database", {}).get("url", f"sqlite:///{var_dir}/sepa-engine.db")),
        var_dir=var_dir,
        outbox_dir=Path(str(data.get("paths", {}).get("outbox_dir", var_dir / "outbox"))),
        inbox_dir=Path(str(data.get("paths", {}).get("inbox_dir", var_dir / "inbox"))),
        timezone=str(data.get("engine", {}).get("timezone", DEFAULT_TIMEZONE)),
        lock_wait_seconds=float(data.get("engine", {}).get("lock_wait_seconds", 0.0)),  # type: ignore[arg-type]
        chunk_size=int(data.get("engine", {}).get("chunk_size", 5_000)),  # type: ignore[call-overload]
        scheduler=_scheduler(data.get("scheduler", {})),
    )
    env_url = os.environ.get("SEPA_ENGINE_DATABASE_URL")
    if env_url:
        settings = Settings(**{**_asdict(settings), "database_url": env_url})
    _validate(settings)
    return settings


def _asdict(settings: Settings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in Settings.__slots__}  # type: ignore[attr-defined]


def _read(path: Path) -> dict[str, dict[str, object]]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise errors.ConfigurationError("config", str(path), "does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigurationError("config", str(path), f"is not valid TOML: {exc}") from None


def _check_keys(data: dict[str, dict[str, object]]) -> None:
    for section, values in data.items():
        if section not in _KEYS:
            raise errors.ConfigurationError(f"[{section}]", None, f"is not a known section (known: {', '.join(sorted(_KEYS))})")
        if not isinstance(values, dict):
            raise errors.ConfigurationError(f"[{section}]", None, "must be a table")
        for key in values:
            if key not in _KEYS[section]:
                raise errors.ConfigurationError(
                    f"{section}.{key}", None, f"is not a known key (known: {', '.join(sorted(_KEYS[section]))})"
                )
    jobs = data.get("scheduler", {}).get("jobs", {})
    if not isinstance(jobs, dict):
        raise errors.ConfigurationError("[scheduler.jobs]", None, "must be a table of [scheduler.jobs.<name>] tables")
    for name, values in jobs.items():
        if name not in JOB_NAMES:
            raise errors.ConfigurationError(
                f"[scheduler.jobs.{name}]", None, f"is not a known job (known: {', '.join(JOB_NAMES)})"
            )
        if not isinstance(values, dict):
            raise errors.ConfigurationError(f"[scheduler.jobs.{name}]", None, "must be a table")
        for key in values:
            if key not in _JOB_KEYS:
                raise errors.ConfigurationError(
                    f"scheduler.jobs.{name}.{key}", None, f"is not a known key (known: {', '.join(sorted(_JOB_KEYS))})"
                )


def _scheduler(section: dict[str, object]) -> SchedulerSettings:
    """The [scheduler] section, every value checked and named when wrong.

    Without a [scheduler.jobs] table the defaults apply (``nightly`` on weekdays at 22:30);
    with one, exactly the jobs it lists are scheduled.
    """
    timezone = section.get("timezone")
    if timezone is not None and not isinstance(timezone, str):
        raise errors.ConfigurationError("scheduler.timezone", timezone, "must be a time zone name")
    lock_wait = section.get("lock_wait_seconds", 0.0)
    if isinstance(lock_wait, bool) or not isinstance(lock_wait, (int, float)) or lock_wait < 0:
        raise errors.ConfigurationError("scheduler.lock_wait_seconds", lock_wait, "must be a number of seconds, 0 or more")
    grace = section.get("misfire_grace_seconds", DEFAULT_MISFIRE_GRACE_SECONDS)
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 1:
        raise errors.ConfigurationError("scheduler.misfire_grace_seconds", grace, "must be a whole number of seconds, 1 or more")
    if "jobs" not in section:
        return SchedulerSettings(timezone, float(lock_wait), grace)
    jobs = tuple(_job(name, values) for name, values in section["jobs"].items())  # type: ignore[attr-defined]
    return SchedulerSettings(timezone, float(lock_wait), grace, jobs)


def _job(name: str, values: dict[str, object]) -> JobSchedule:
    enabled = values.get("enabled", True)
    if not isinstance(enabled, bool):
        raise errors.ConfigurationError(f"scheduler.jobs.{name}.enabled", enabled, "must be true or false")
    cron = values.get("cron")
    if not isinstance(cron, str):
        raise errors.ConfigurationError(
            f"scheduler.jobs.{name}.cron", cron, "must be a 5-field crontab line such as \"30 22 * * 1-5\""
        )
    return JobSchedule(name, cron, enabled)


def _validate(settings: Settings) -> None:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.ConfigurationError("engine.timezone", settings.timezone, "is not a known time zone") from None
    if settings.chunk_size < 1:
        raise errors.ConfigurationError("engine.chunk_size", settings.chunk_size, "must be at least 1")
    zone = settings.scheduler_timezone
    if settings.scheduler.timezone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise errors.ConfigurationError("scheduler.timezone", zone, "is not a known time zone") from None
    # Imported here: APScheduler is needed only once a [scheduler] is read.
    from sepa_engine.jobs.crontab import CrontabError, cron_trigger

    for job in settings.scheduler.jobs:
        try:
            cron_trigger(job.cron, zone)
        except CrontabError as exc:
            raise errors.ConfigurationError(f"scheduler.jobs.{job.name}.cron", job.cron, f"is not a valid crontab line: {exc}") from None
