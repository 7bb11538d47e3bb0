"""The one lookup of ../shared: the official XSDs and the real bank files that sit beside the
repository (never copied into it). A test that needs them is skipped, with this reason, only
where ../shared is absent, as in a bare clone."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
ABSENT = "../shared is not present: the official XSDs and the bank samples live there"


def present() -> bool:
    return SHARED.is_dir()


def shared_dir() -> Path:
    if not present():
        pytest.skip(ABSENT)
    return SHARED


def samples_dir(message: str | None = None) -> Path:
    """iso20022/samples, or its folder for one message (``"pain.002"``, ``"camt.054"``...)."""
    folder = shared_dir() / "iso20022" / "samples"
    return folder / message if message else folder


def xsd_dir() -> Path:
    return shared_dir() / "iso20022" / "xsd"


def all_samples(message: str) -> list[Path]:
    """Every sample of one message, sorted; empty (no skip) without ../shared, for parametrize
    lists built at import time."""
    folder = SHARED / "iso20022" / "samples" / message
    return sorted(folder.glob("*.xml")) if folder.is_dir() else []
