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
    from sepa_engine.cli import collect, files  # noqa: F401


_register()
