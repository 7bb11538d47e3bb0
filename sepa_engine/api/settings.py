"""The ``[api]`` table of the configuration file: where the HTTP API listens and how big a
request body may be.

Read here, from the same file ``config.load_settings`` reads (``--config``, then
``SEPA_ENGINE_CONFIG``, then ``config/sepa-engine.toml``), until ``config.py`` takes it
over. Only ``[api]`` is checked here; unknown keys in it are refused by name.

```toml
[api]
host = "127.0.0.1"        # loopback by default: put a TLS proxy in front to serve further
port = 8080
max_body_bytes = 1048576  # larger request bodies are refused with 413
token_cache_seconds = 1.0 # a token is looked up at most this often; a revocation applies within it
lock_wait_seconds = 60    # a write waits this long for a job's locks, then answers 503 ledger_busy
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sepa_engine import errors
from sepa_engine.config import DEFAULT_CONFIG_PATH

KEYS = ("host", "port", "max_body_bytes", "token_cache_seconds", "lock_wait_seconds")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    token_cache_seconds: float = 1.0
    # SQLite's busy timeout (db/session.py), so that both backends answer alike by default.
    lock_wait_seconds: float = 60.0


def load_api_settings(path: str | os.PathLike[str] | None = None) -> ApiSettings:
    chosen = path or os.environ.get("SEPA_ENGINE_CONFIG")
    file = Path(chosen) if chosen else (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None)
    if file is None:
        return ApiSettings()
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise errors.ConfigurationError("config", str(file), "does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigurationError("config", str(file), f"is not valid TOML: {exc}") from None
    return from_table(data.get("api", {}))


def from_table(table: object) -> ApiSettings:
    if not isinstance(table, dict):
        raise errors.ConfigurationError("[api]", None, "must be a table")
    for key in table:
        if key not in KEYS:
            raise errors.ConfigurationError(f"api.{key}", None, f"is not a known key (known: {', '.join(sorted(KEYS))})")
    default = ApiSettings()
    host = table.get("host", default.host)
    port = table.get("port", default.port)
    limit = table.get("max_body_bytes", default.max_body_bytes)
    if not isinstance(host, str) or not host.strip():
        raise errors.ConfigurationError("api.host", host, "must be a host name or address")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise errors.ConfigurationError("api.port", port, "must be an integer from 0 to 65535")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1_024 <= limit <= 1_073_741_824:
        raise errors.ConfigurationError("api.max_body_bytes", limit, "must be an integer from 1024 to 1073741824")
    cache = table.get("token_cache_seconds", default.token_cache_seconds)
    if isinstance(cache, bool) or not isinstance(cache, (int, float)) or not 0 <= cache <= 60:
        raise errors.ConfigurationError("api.token_cache_seconds", cache, "must be a number of seconds from 0 to 60")
    wait = table.get("lock_wait_seconds", default.lock_wait_seconds)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0.1 <= wait <= 600:
        raise errors.ConfigurationError("api.lock_wait_seconds", wait, "must be a number of seconds from 0.1 to 600")
    return ApiSettings(host, port, limit, float(cache), float(wait))
