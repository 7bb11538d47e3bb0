"""The README's command examples run (issue 17): each one that can run against a fresh ledger is
executed, under the README's own dates, and exits with the code README's exit table promises.

test_readme_claims.py checks that every example names a command and options that exist; this file
proves they do what the README says they do. An example is matched by its exact text, so editing it
in the README without updating this file fails here.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from pathlib import Path

import pytest
from freezegun import freeze_time

from sepa_engine.cli.main import main
from sepa_engine.exit_codes import ExitCode
from tests import accounts_world as world
from tests.cli.test_readme_claims import EXAMPLES

# Friday 20 November 2026, the day the README's invoice F26-1201 is issued.
NOW = "2026-11-20T10:00:00+01:00"

# Example -> the code it exits with on a ledger holding creditors pressimmo and gim, their accounts
# AG-7003 and LOC-0006, and nothing else. Each refusal (1) is one the table lists for that command.
RUN = {
    "accounts invoices add AG-7003 --creditor pressimmo --number F26-1201 --issue-date 2026-11-20      "
    "--due-date 2026-12-20 --amount 1200.00 --key inv-F26-1201": ExitCode.OK,
    "accounts pay-now AG-7003 --creditor pressimmo --invoice F26-1201 --key click-1": ExitCode.OK,
    # F26-1202 was never added: "the request was refused".
    'accounts disputes open AG-7003 --creditor pressimmo --invoice F26-1202 --reason "ad not published"      '
    "--actor agency --key dispute-1": ExitCode.INVALID,
    "accounts schedule run [--date D]": ExitCode.OK,
    "accounts prenotifications export --creditor gim [--csv|--json]": ExitCode.OK,
    "accounts statement AG-7003 --creditor pressimmo [--all] [--from D] [--to D] [--document N] [--csv|--json]": ExitCode.OK,
    'accounts set-mode LOC-0006 --creditor gim --mode on_demand --actor staff:claire      '
    '--reason "tenant asked by registered letter" --key mode-back-1': ExitCode.OK,
    "returns import-inbox": ExitCode.OK,
    "returns policy show --creditor gim": ExitCode.OK,
    "returns policy set AM04 --creditor gim --max-retries 2": ExitCode.OK,
    "returns exceptions list": ExitCode.OK,
    # No exception 3 in a fresh ledger: "unknown id".
    'returns exceptions resolve 3 --as 42 --note "matched by hand"': ExitCode.INVALID,
    # REF names no mandate: "unknown mandate".
    'mandates release REF --creditor gim --note "tenant called, agreed"': ExitCode.INVALID,
    "batches list --awaiting-approval": ExitCode.OK,
    # No batch 12: "unknown batch".
    "batch approve 12": ExitCode.INVALID,
    'batch approve 12 --by "Marie Dubois"': ExitCode.INVALID,
    'batch withdraw 12 --reason "LOC-7 paid by transfer" --by "Marie Dubois"': ExitCode.INVALID,
    "batches list --status published --from 2026-11-01 --to 2026-11-30 --creditor gim": ExitCode.OK,
    "tokens create --name billing --creditor gim --creditor pressimmo --access write": ExitCode.OK,
    "tokens list": ExitCode.OK,
    # No token 3: "unknown token".
    "tokens revoke 3": ExitCode.INVALID,
    "api openapi": ExitCode.OK,
}

# Not executed, and why: they need a server, a host's paths, the reader's own files or values
# the README leaves as placeholders.
NOT_RUN = {
    "accounts set-mode LOC-0006 --creditor gim --mode automatic --frequency monthly --day 8      "
    "--mandate-reference RUM-2 --signed-at 2026-11-18T14:31:07+01:00 --iban FR76... --signer \"Hugo Lefevre\"      "
    "--evidence yousign-7f3e2a --actor portal --key mode-1": "the IBAN is a placeholder (FR76...)",
    "accounts change-bank LOC-0004 --creditor gim --mandate-reference RUM-GIM-0004 --signed-at ...      "
    "--iban DE02... --signer \"Sofia Rossi\" --evidence ... --actor portal --key bank-1": "date, IBAN and evidence are placeholders",
    "reconcile var/inbox/*.xml": "a shell glob over the bank's files in the reader's inbox",
    "run-nightly --config config/sepa-engine.toml": "cron's line, with the host's configuration",
    "serve --config /srv/sepa/config/sepa-engine.toml": "a long-running service (systemd), with the host's paths",
    "api --workers 4 --config /srv/sepa/config/sepa-engine.toml": "an HTTP server that runs until stopped",
    "collect --config /srv/sepa/config/sepa-engine.toml": "the systemd unit's line, with the host's paths",
    "api": "an HTTP server that runs until stopped",
    "enqueue requests.jsonl --creditor gim": "the reader's own requests file",
    "enqueue requests.csv --creditor gim --skip-bad --rejects rejects.csv": "the reader's own requests file",
}


def test_every_readme_example_is_run_or_says_why_not():
    assert sorted(EXAMPLES) == sorted([*RUN, *NOT_RUN])


def _args(example: str) -> list[str]:
    # "[--csv|--json]"-style optional parts are left out: the example runs with its required words.
    return shlex.split(re.sub(r"\[[^\]]*\]", "", example))


@pytest.fixture
def config(db, database_url: str, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    with freeze_time(NOW):
        world.creditor(db, "pressimmo")
        world.creditor(db, "gim", group=None)
        world.account(db, "pressimmo", "AG-7003")
        world.account(db, "gim", "LOC-0006")
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[paths]\nvar_dir = "{tmp_path / "var"}"\noutbox_dir = "{tmp_path / "outbox"}"\ninbox_dir = "{tmp_path / "inbox"}"\n'
    )
    (tmp_path / "inbox").mkdir()
    return str(path)


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["sepa-engine", *args])
    # `api openapi` reads no clock and builds the FastAPI app, whose date fields pydantic cannot
    # build on freezegun's FakeDate: it runs unfrozen.
    frozen = freeze_time(NOW) if args[:2] != ["api", "openapi"] else contextlib.nullcontext()
    with frozen, pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


def test_the_readme_examples_exit_as_its_exit_table_says(config, monkeypatch, capsys):
    # In README order: the invoice is added before pay-now collects it.
    outcomes = {}
    for example in EXAMPLES:
        if example not in RUN:
            continue
        args = _args(example)
        if args[:2] != ["api", "openapi"]:
            args += ["--config", config]
        outcomes[example] = _run(args, monkeypatch)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert outcomes == {example: int(code) for example, code in RUN.items()}, captured.err
