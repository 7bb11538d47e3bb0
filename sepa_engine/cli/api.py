"""``sepa-engine api``: serve the HTTP API with uvicorn; ``sepa-engine api openapi`` prints
its OpenAPI document (``docs/openapi.json`` is that output, checked in).

Host, port and the body size limit come from the ``[api]`` table of the configuration
(``sepa_engine/api/settings.py``); ``--host``/``--port`` override them.
"""

from __future__ import annotations

import json
import os
import sys

import typer

from sepa_engine import errors
from sepa_engine.cli import context
from sepa_engine.cli.context import ConfigOption
from sepa_engine.cli.main import app

api_app = typer.Typer(help="The HTTP API for upstream systems.", invoke_without_command=True)
app.add_typer(api_app, name="api")

HostOption = typer.Option(None, "--host", help="Address to listen on (default api.host, 127.0.0.1).")
PortOption = typer.Option(None, "--port", min=0, max=65535, help="Port (default api.port, 8080).")
WorkersOption = typer.Option(1, "--workers", min=1, max=64, help="uvicorn worker processes (PostgreSQL: several share one ledger).")


@api_app.callback()
def api(
    ctx: typer.Context,
    host: str | None = HostOption,
    port: int | None = PortOption,
    workers: int = WorkersOption,
    config: str | None = ConfigOption,
) -> None:
    """Serve the HTTP API (the same as ``api serve``)."""
    if ctx.invoked_subcommand is None:
        _serve(host, port, workers, config)


@api_app.command("serve")
def serve(
    host: str | None = HostOption,
    port: int | None = PortOption,
    workers: int = WorkersOption,
    config: str | None = ConfigOption,
) -> None:
    """Serve the HTTP API with uvicorn until interrupted."""
    _serve(host, port, workers, config)


@api_app.command("openapi")
def openapi(config: str | None = ConfigOption) -> None:
    """Print the OpenAPI document (regenerate docs/openapi.json with: sepa-engine api openapi > docs/openapi.json)."""
    from sepa_engine.api.server import openapi_document

    sys.stdout.write(json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n")


def _serve(host: str | None, port: int | None, workers: int, config: str | None) -> None:
    import uvicorn

    from sepa_engine.api.settings import load_api_settings

    with context.handled():
        settings = context.settings(config)
        api_settings = load_api_settings(config)
        if workers > 1 and settings.database_url.startswith("sqlite"):
            raise errors.ConfigurationError("--workers", workers, "needs PostgreSQL: SQLite serialises writers anyway")
    # A ledger that does not answer at start is one line and exit 69, as for `serve`; one that
    # goes away later is answered 503 (api/problems.py) until it is back.
    with context.database(config):
        pass
    if config:
        os.environ["SEPA_ENGINE_CONFIG"] = str(config)
    uvicorn.run(
        "sepa_engine.api.server:app_from_environment",
        factory=True,
        host=host or api_settings.host,
        port=api_settings.port if port is None else port,
        workers=workers,
        # httptools and uvloop (uvicorn[standard]) where installed: half the CPU of h11 and asyncio.
        http="auto",
        loop="auto",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
