"""Exit codes for cron and scripts, documented in README.md.

Shared by the jobs, the CLI and the API, so it lives at the top of the package.
"""

from __future__ import annotations

from enum import IntEnum

from sepa_engine import errors


class ExitCode(IntEnum):
    OK = 0
    INVALID = 1          # the input was read and breaks rules (verify found problems)
    UNREADABLE = 2       # not XML, hostile XML, unknown message: nothing could be checked
    USAGE = 64           # bad arguments (sysexits EX_USAGE)
    NOTHING_TO_DO = 3
    PARTIAL = 4          # some requests refused, the rest collected
    FAILED = 5
    LOCK_BUSY = 75       # another scheduler holds the ledger; nothing done (sysexits EX_TEMPFAIL)
    INTERRUPTED = 143    # stopped by SIGTERM between two transactions (128 + 15, as a shell says)


def for_error(error: errors.SepaEngineError) -> ExitCode:
    if isinstance(error, errors.MessageError):
        return ExitCode.UNREADABLE
    if isinstance(error, errors.ConfigurationError):
        return ExitCode.USAGE
    return ExitCode.FAILED
