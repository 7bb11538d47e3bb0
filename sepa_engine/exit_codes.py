"""Exit codes for cron and scripts, documented in README.md.

Shared by the jobs, the CLI and the API, so it lives at the top of the package.
"""

from __future__ import annotations

from enum import IntEnum

from sepa_engine import errors


class ExitCode(IntEnum):
    OK = 0
    INVALID = 1          # refused: the input breaks rules, or names nothing in the ledger
    UNREADABLE = 2       # not XML, hostile XML, unknown message: nothing could be checked
    USAGE = 64           # bad arguments or configuration (sysexits EX_USAGE)
    UNAVAILABLE = 69     # the ledger's database did not answer; nothing done, retry later (sysexits EX_UNAVAILABLE)
    NOTHING_TO_DO = 3
    PARTIAL = 4          # some requests refused, the rest collected
    FAILED = 5
    LOCK_BUSY = 75       # another run holds the ledger, or the database undid a write; run it again (EX_TEMPFAIL)
    INTERRUPTED = 143    # stopped by SIGTERM between two transactions (128 + 15, as a shell says)


# By the error's stable code, for errors defined outside errors.py (db.locks.LockBusy),
# so this module needs no import of the layers that raise them.
_BY_CODE = {
    "lock_busy": ExitCode.LOCK_BUSY,
    # A transaction PostgreSQL undid to break a deadlock, or one that waited past its bound:
    # nothing of it was applied, and the same command run later may get through.
    errors.LedgerBusy.code: ExitCode.LOCK_BUSY,
}


def for_error(error: errors.SepaEngineError) -> ExitCode:
    """One code per situation, whatever the command: a lock held by another run is 75
    for ``collect`` as for ``run-nightly``, a bad configuration 64, bad input 2."""
    by_code = _BY_CODE.get(error.code)
    if by_code is not None:
        return by_code
    if isinstance(error, errors.MessageError):
        return ExitCode.UNREADABLE
    if isinstance(error, errors.ConfigurationError):
        return ExitCode.USAGE
    if isinstance(error, errors.NotFound):
        # Refused: the ledger has no such creditor, batch or exception (as batch approve says).
        return ExitCode.INVALID
    if isinstance(error, errors.DatabaseUnavailable):
        return ExitCode.UNAVAILABLE
    return ExitCode.FAILED
