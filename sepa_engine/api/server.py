"""The application as uvicorn builds it in each worker process, from the environment
(``SEPA_ENGINE_CONFIG``, ``SEPA_ENGINE_DATABASE_URL``), with the system clock."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sepa_engine import logs
from sepa_engine.api.app import create_app
from sepa_engine.api.settings import load_api_settings
from sepa_engine.clock import SystemClock
from sepa_engine.config import Settings, load_settings
from sepa_engine.db.session import Database


def app_from_environment() -> FastAPI:
    logs.configure()
    settings = load_settings()
    return create_app(settings, Database(settings.database_url), SystemClock(), load_api_settings())


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document; it depends on no setting and no database."""
    return create_app(Settings(database_url="sqlite://"), Database("sqlite://"), SystemClock()).openapi()
