"""``simulate-bank``: let the project's bank answer one of our pain.008 files.

Writes ``<MsgId>-pain002.xml`` and ``<MsgId>-camt054.xml`` into ``--out`` (var/inbox by
default), where reconciliation picks bank files up. Prints one line per answer, or one
JSON document with ``--json``.

Exit codes (``exit_codes.ExitCode``): 0 when both answers were written; 2 when the file
cannot be read or is not a pain.008 (one line on stderr, ``path: problem``); 64 for
rates or options out of range; 5 when an answer of that name already exists or an answer
breaks its XSD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sepa_engine import errors
from sepa_engine.banksim import (
    DEFAULT_OUT_DIR,
    SimulationResult,
    load_schemas,
    simulate,
)
from sepa_engine.cli import context
from sepa_engine.cli.main import app
from sepa_engine.domain.money import format_cents
from sepa_engine.exit_codes import ExitCode, for_error


@app.command("simulate-bank")
def simulate_bank_command(
    file: Annotated[Path, typer.Argument(help="pain.008 file to answer.", show_default=False)],
    reject_rate: Annotated[
        float, typer.Option("--reject-rate", help="Share of all transactions rejected before settlement (0 to 1).")
    ],
    return_rate: Annotated[
        float, typer.Option("--return-rate", help="Share of the settled transactions returned afterwards (0 to 1).")
    ],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bank's draws: same file, rates and seed, same bytes.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the answers.")] = DEFAULT_OUT_DIR,
    xsd_dir: Annotated[
        Path | None,
        typer.Option(
            "--xsd-dir",
            help="Folder with pain.002.001.03.xsd, pain.002.001.10.xsd and camt.054.001.02.xsd: validate while writing.",
        ),
    ] = None,
    as_json: bool = context.JsonOption,
) -> None:
    """Answer a pain.008 file as the bank would: a pain.002 status report and a camt.054 notification."""
    try:
        schemas = load_schemas(xsd_dir) if xsd_dir is not None else None
        result = simulate(file, out, reject_rate, return_rate, seed, schemas=schemas, keep_details=False)
    except errors.MessageError as exc:
        # typer.echo, not rich: rich would wrap a long libxml2 message over several lines.
        typer.echo(f"{file}: {_problem(exc, path_shown=True)}", err=True)
        raise typer.Exit(int(ExitCode.UNREADABLE)) from None
    except errors.SepaEngineError as exc:
        typer.echo(f"error: {_problem(exc)}", err=True)
        raise typer.Exit(int(for_error(exc))) from None
    if as_json:
        context.emit_json(result.to_dict())
    else:
        _print(result)
    raise typer.Exit(int(ExitCode.OK))


def _problem(exc: errors.SepaEngineError, *, path_shown: bool = False) -> str:
    # When the line starts with the path, "file '<path>'" would say it twice.
    text = exc.rule if path_shown and exc.field == "file" else str(exc)
    return " ".join(text.split())


def _print(result: SimulationResult) -> None:
    typer.echo(
        f"{result.pain002_path}: {result.group_status} for {result.original_message_id} "
        f"({result.original_message_name}), {result.rejected_count} of {result.transactions} transactions rejected "
        f"({format_cents(result.rejected_cents)} EUR)"
    )
    typer.echo(
        f"{result.camt054_path}: {result.settled_count} transactions settled ({format_cents(result.settled_cents)} EUR), "
        f"{result.returned_count} returned ({format_cents(result.returned_cents)} EUR, "
        f"fees {format_cents(result.fees_cents)} EUR)"
    )
