"""``sepa-engine tokens create|list|revoke``: bearer tokens of the HTTP API.

A token is printed once, when created; the ledger keeps only its sha256.
"""

from __future__ import annotations

import typer

from sepa_engine import errors
from sepa_engine.cli import context
from sepa_engine.cli.context import ConfigOption, JsonOption
from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode
from sepa_engine.services import api_tokens

tokens_app = typer.Typer(help="Bearer tokens of the HTTP API (sepa-engine api).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="Who uses the token (shown in lists and kept as the actor of its changes)."),
    creditor: list[str] = typer.Option(..., "--creditor", help="A creditor the token acts for (repeat for several)."),
    access: str = typer.Option(..., "--access", help="read, or write (which implies read)."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a token and print it once: store it in the upstream system's secrets now."""
    if access not in api_tokens.ACCESS:
        # A bad argument (64), caught before the ledger is opened, like the parser's own.
        context.fail(errors.InvalidFormat("--access", access, "must be one of read, write"), ExitCode.USAGE)
    with context.handled(), context.engine(config) as engine:
        made = engine.create_token(name=name, creditors=creditor, access=access)
    document = {**made.view.to_dict(), "token": made.token}

    def draw() -> None:
        context.stdout.print(made.token, markup=False, highlight=False, soft_wrap=True)
        context.stderr.print(
            f"token {made.view.id} ({made.view.access}, creditors: {', '.join(made.view.creditors)}): "
            "shown once, only its hash is kept",
            markup=False, highlight=False, soft_wrap=True,
        )

    context.render(document, as_json, draw)


@tokens_app.command("list")
def list_(config: str | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Every token: id, prefix, name, creditors, access, created, revoked (never the token)."""
    with context.handled(), context.engine(config) as engine:
        views = engine.tokens()
    rows = [
        (v.id, v.prefix + "…", v.name, ", ".join(v.creditors), v.access, v.created_at.isoformat(timespec="seconds"),
         v.revoked_at.isoformat(timespec="seconds") if v.revoked_at else None)
        for v in views
    ]
    context.render(
        {"tokens": [v.to_dict() for v in views]}, as_json,
        lambda: context.stdout.print(context.table(
            "API tokens", ("id", "prefix", "name", "creditors", "access", "created", "revoked"), rows, right=("id",))),
    )


@tokens_app.command("revoke")
def revoke(
    token_id: int = typer.Argument(..., help="The token's id (tokens list)."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Revoke a token: refused from its next request on. Revoking it again changes nothing."""
    with context.handled(), context.engine(config) as engine:
        view = engine.revoke_token(token_id)
    context.render(view.to_dict(), as_json, lambda: context.stdout.print(
        f"token {view.id} ({view.name}) revoked at {view.revoked_at.isoformat() if view.revoked_at else ''}",
        markup=False, highlight=False))
