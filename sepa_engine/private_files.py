"""Files and folders the engine creates hold debtors' names, IBANs and token hashes: they are
owner-only whatever the umask, and a file the engine writes for a person (a rejects file, an
export) is created exclusively, never over a file that is already there.

``mkdir(mode=...)`` alone is not enough: the mode is masked by the umask only on the last
level, and ``parents=True`` creates every missing parent with the umask's default (0755
under the usual 022). Each missing level is created here with 0700 instead; folders that
already existed are left as their owner set them.
"""

from __future__ import annotations

import os
from pathlib import Path

from sepa_engine import errors

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_dir(path: Path) -> Path:
    """``path`` and every missing parent, created 0700."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made by another process meanwhile: it is theirs to set
        os.chmod(folder, DIR_MODE)  # mkdir's mode is masked by the umask
    return path


def ensure_file(path: Path) -> Path:
    """``path`` created empty and 0600 if it does not exist (a SQLite ledger before SQLite
    opens it, so that it and its -wal and -shm files, which copy its mode, are private)."""
    ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path


def write_new(path: Path, text: str, what: str = "file") -> Path:
    """Write ``text`` to a new 0600 file; refuse, naming it, when ``path`` already exists."""
    ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise errors.InvalidFormat(what, str(path), "already exists: choose another name (it is never overwritten)") from None
    except OSError as exc:
        raise errors.InvalidFormat(what, str(path), f"cannot be created: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return path
