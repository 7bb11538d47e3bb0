"""The ``sepa-engine`` command: thin commands that parse, call a service and render.

Exit codes are mapped from error codes (never from message text); see ``exit_codes.py``.
"""

from __future__ import annotations

import typer

from sepa_engine import logs

app = typer.Typer(
    name="sepa-engine",
    help="SEPA Core Direct Debit batch engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """SEPA Core Direct Debit batch engine."""
    logs.configure()


def _register() -> None:
    # Commands live in their own modules; importing them registers them on ``app``.
    from sepa_engine.cli import (  # noqa: F401
        accounts,
        api,
        banksim,
        collect,
        enqueue,
        files,
        ledger,
        reconcile,
        returns,
        service,
        tokens,
    )


_register()


def main() -> None:
    """Console entry point: usage errors exit 64 (EX_USAGE), as documented, rather than the
    parser's 2, which this CLI keeps for unreadable input."""
    import sys

    from typer.exceptions import TyperException

    from sepa_engine.exit_codes import ExitCode

    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except TyperException as exc:
        # The parser's usage errors (unknown option, missing argument, bad value).
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc}", file=sys.stderr)
        sys.exit(int(ExitCode.USAGE))
    sys.exit(code if isinstance(code, int) else 0)
