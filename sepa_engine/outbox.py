"""Files handed to the bank: staged under a temporary name, published by an atomic link.

A file is visible under its final name only once it is complete, validated and fsynced.
Publishing never overwrites: ``os.link`` fails if the final name exists, so a rerun can
never replace a file the bank may already have fetched. Files and folders are owner-only
(0600/0700): they hold debtors' names and IBANs.

Files of a creditor that requires approval are published under ``pending/<creditor>/``
inside the outbox; ``move`` hands them to ``<creditor>/`` once approved, again by link
and never overwriting.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from sepa_engine import errors, private_files

T = TypeVar("T")
TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"
FILE_MODE = 0o600
DIR_MODE = 0o700
# The folder, inside the outbox, of files waiting for a person's approval. No creditor may
# use it as its code (registry).
PENDING_FOLDER = "pending"


def temp_path(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{final.name}{TEMP_SUFFIX}")


def ensure_dir(path: Path) -> None:
    # Every missing level 0700, not only the last (``outbox/`` and ``pending/`` too).
    private_files.ensure_dir(path)


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


def replace(tmp: Path, final: Path) -> None:
    """Give a staged *derived* document (a review summary) its name, replacing an older copy
    atomically. Never use it for a file handed to the bank: that is ``publish``."""
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def move(source: Path, target: Path) -> bool:
    """Move a published file to ``target`` by link then unlink, never overwriting.

    Safe to repeat after a crash at any point: a target that already is the same file
    (same inode, left by an interrupted move) counts as moved. Returns False when
    ``source`` is gone and ``target`` exists (moved before); raises when neither exists, or
    when ``target`` holds another file.
    """
    if not source.exists():
        if target.exists():
            return False
        raise errors.CollectionError("file", str(source), "is missing: neither it nor its target exists")
    ensure_dir(target.parent)
    try:
        os.link(source, target)
    except FileExistsError:
        if not os.path.samefile(source, target):
            raise errors.CollectionError("file", str(target), "already exists: a published file is never overwritten") from None
    _fsync_dir(target.parent)
    source.unlink()
    _fsync_dir(source.parent)
    return True


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
