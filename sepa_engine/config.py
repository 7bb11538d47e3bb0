"""Engine settings from a TOML file, with environment overrides for deployment.

Lookup order for the file: ``--config`` on the command line, ``SEPA_ENGINE_CONFIG``, then
``config/sepa-engine.toml`` if present; without any file the embedded defaults apply
(SQLite under ``var/``). ``SEPA_ENGINE_DATABASE_URL`` overrides ``database.url``. Unknown
keys are refused by name: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sepa_engine import errors
from sepa_engine.clock import DEFAULT_TIMEZONE

DEFAULT_CONFIG_PATH = Path("config/sepa-engine.toml")


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


_KEYS = {
    "database": {"url"},
    "paths": {"var_dir", "outbox_dir", "inbox_dir"},
    "engine": {"timezone", "lock_wait_seconds", "chunk_size"},
}


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


def _validate(settings: Settings) -> None:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.ConfigurationError("engine.timezone", settings.timezone, "is not a known time zone") from None
    if settings.chunk_size < 1:
        raise errors.ConfigurationError("engine.chunk_size", settings.chunk_size, "must be at least 1")
