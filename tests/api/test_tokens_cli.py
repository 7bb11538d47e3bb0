from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.db.service_models import ApiToken
from sepa_engine.db.session import Database
from sepa_engine.services import api_tokens
from tests import accounts_world as world

runner = CliRunner()


def config_file(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n')
    return str(path)


def test_a_created_token_is_printed_once_and_only_its_hash_is_stored(db: Database, database_url: str, tmp_path: Path) -> None:
    world.creditor(db, "pressimmo")
    world.creditor(db, "poliris")
    config = config_file(tmp_path, database_url)
    result = runner.invoke(app, ["tokens", "create", "--name", "billing", "--creditor", "pressimmo",
                                 "--creditor", "poliris", "--access", "write", "--config", config])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("sek_") and len(token) > 40
    with db.reader() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.token_hash == api_tokens.token_hash(token)
        assert token not in (row.prefix, row.token_hash, row.name)
        principal = api_tokens.authenticate(s, token)
    assert principal is not None
    assert principal.creditors == {"pressimmo", "poliris"} and principal.can_write


def test_tokens_list_shows_prefix_name_creditors_access_and_revocation(db: Database, database_url: str, tmp_path: Path) -> None:
    world.creditor(db, "pressimmo")
    config = config_file(tmp_path, database_url)
    created = json.loads(runner.invoke(app, ["tokens", "create", "--name", "portal", "--creditor", "pressimmo",
                                             "--access", "read", "--json", "--config", config]).stdout)
    revoked = runner.invoke(app, ["tokens", "revoke", str(created["id"]), "--config", config])
    assert revoked.exit_code == 0, revoked.output
    listed = json.loads(runner.invoke(app, ["tokens", "list", "--json", "--config", config]).stdout)["tokens"]
    assert [(t["name"], t["creditors"], t["access"], t["prefix"]) for t in listed] == [
        ("portal", ["pressimmo"], "read", created["token"][:10])
    ]
    assert listed[0]["revoked_at"] is not None
    assert "token" not in listed[0]
    with db.reader() as s:
        assert api_tokens.authenticate(s, created["token"]) is None


def test_a_token_for_an_unknown_creditor_or_access_is_refused(db: Database, database_url: str, tmp_path: Path) -> None:
    world.creditor(db, "pressimmo")
    config = config_file(tmp_path, database_url)
    unknown = runner.invoke(app, ["tokens", "create", "--name", "x", "--creditor", "nobody", "--access", "read", "--config", config])
    bad_access = runner.invoke(app, ["tokens", "create", "--name", "x", "--creditor", "pressimmo", "--access", "admin", "--config", config])
    assert unknown.exit_code != 0 and "nobody" in unknown.output
    assert bad_access.exit_code != 0 and "access" in bad_access.output
    with db.reader() as s:
        assert s.scalars(select(ApiToken)).all() == []
