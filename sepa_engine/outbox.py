"""Files handed to the bank: staged under a temporary name, published by an atomic link.

A file is visible under its final name only once it is complete, validated and fsynced.
Publishing never overwrites: ``os.link`` fails if the final name exists, so a rerun can
never replace a file the bank may already have fetched. Files and folders are owner-only
(0600/0700): they hold debtors' names and IBANs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from sepa_engine import errors

T = TypeVar("T")
TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"
FILE_MODE = 0o600
DIR_MODE = 0o700


def temp_path(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{final.name}{TEMP_SUFFIX}")


def ensure_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def stage(final: Path, write: Callable[[BinaryIO], T]) -> tuple[Path, T]:
    """Write through ``write`` into the temporary name beside ``final``; fsync it.

    On any error the temporary file is removed and the error propagates.
    """
    ensure_dir(final.parent)
    tmp = temp_path(final)
    if tmp.exists():
        # A crashed run's leftover: its content was never recorded as published.
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            result = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, result


def publish(tmp: Path, final: Path) -> None:
    """Give the staged file its final name, atomically and without overwriting."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise errors.CollectionError("file", str(final), "already exists: a published file is never overwritten") from None
    tmp.unlink()
    _fsync_dir(final.parent)


def discard(tmp: Path) -> None:
    tmp.unlink(missing_ok=True)


def leftovers(folder: Path) -> Iterator[Path]:
    """Temporary files a crashed run left behind."""
    if not folder.exists():
        return
    yield from sorted(folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
