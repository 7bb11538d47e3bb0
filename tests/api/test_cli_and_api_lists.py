"""`requests list --json` and `mandates list --json` print the documents the API lists, under
the same field names (services/views.py), plus the creditor since the CLI lists them all."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sepa_engine.cli.main import app
from tests import accounts_world as world
from tests.api.conftest import Api

BASE = "/v1/creditors/pressimmo"
runner = CliRunner()


def _cli(api: Api, tmp_path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{api.db.url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n')
    result = runner.invoke(app, [*args, "--creditor", "pressimmo", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_requests_list_json_is_the_api_document_with_its_creditor(api: Api, tmp_path: Path) -> None:
    api.post(f"{BASE}/debit-requests", {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "on_account": True}, key="r-1")
    api.post(f"{BASE}/debit-requests", {"mandate": "RUM-PRE-AG-1", "amount": "12.50", "on_account": True}, key="r-2")
    from_api = api.get(f"{BASE}/debit-requests").json()["items"]
    from_cli = _cli(api, tmp_path, "requests", "list")["requests"]
    assert len(from_api) == 2
    assert [{k: v for k, v in line.items() if k != "creditor"} for line in from_cli] == from_api
    assert {line["creditor"] for line in from_cli} == {"pressimmo"}


def test_mandates_list_json_is_the_api_document_with_its_creditor(api: Api, tmp_path: Path) -> None:
    api.post(f"{BASE}/mandates", {"reference": "RUM-2", "debtor_account": "AG-1", "signed_on": "2025-06-01",
                                  "iban": world.NEW_IBAN, "supersedes": "RUM-PRE-AG-1"}, key="m-2")
    from_api = api.get(f"{BASE}/mandates").json()["items"]
    from_cli = _cli(api, tmp_path, "mandates", "list")["mandates"]
    assert [m["reference"] for m in from_api] == ["RUM-PRE-AG-1", "RUM-2"]
    assert [{k: v for k, v in line.items() if k != "creditor"} for line in from_cli] == from_api
    assert from_cli[1]["supersedes_id"] == from_cli[0]["id"] and world.NEW_IBAN not in json.dumps(from_cli)
