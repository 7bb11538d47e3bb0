from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sepa_engine import errors
from sepa_engine.cli.main import app
from sepa_engine.clock import FixedClock
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.domain.reason_codes import MandateEffect
from sepa_engine.services import policies
from sepa_engine.services.reconciliation import policy_for
from tests import ledger

CLOCK = FixedClock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc))
DOCUMENTED = Path(__file__).resolve().parents[2] / "config" / "reason-codes.md"


def test_the_documented_defaults_are_the_table_the_engine_uses():
    assert DOCUMENTED.read_text() == policies.defaults_markdown()


def test_an_override_changes_only_what_it_sets_and_only_for_its_creditor(db):
    ledger.creditor(db)
    other = ledger.creditor(db, code="other", creditor_identifier="DE98ZZZ09999999999")
    with db.transaction() as s:
        policy = policies.set_policy(s, "martin", "am04", max_retries=2, clock=CLOCK)
    assert (policy.code, policy.max_retries, policy.retry_allowed) == ("AM04", 2, True)
    assert policy.mandate_effect is MandateEffect.NONE  # unchanged default
    with db.reader() as s:
        martin = registry_repo.creditor_by_code(s, "martin")
        assert policy_for(s, martin.id, "AM04").max_retries == 2
        assert policy_for(s, other, "AM04").max_retries == 1
        overridden = {p.code for p, own in policies.effective_policies(s, "martin") if own}
    assert overridden == {"AM04"}


def test_setting_the_same_override_twice_keeps_one_row(db):
    ledger.creditor(db)
    for _ in range(2):
        with db.transaction() as s:
            policies.set_policy(s, "martin", "MS02", mandate_effect="block", clock=CLOCK)
    with db.reader() as s:
        martin = registry_repo.creditor_by_code(s, "martin")
        assert policy_for(s, martin.id, "MS02").mandate_effect is MandateEffect.BLOCK
        assert [own for p, own in policies.effective_policies(s, "martin") if p.code == "MS02"] == [True]


@pytest.mark.parametrize(
    ("code", "kwargs", "error", "field"),
    [
        ("ZZ99", {}, errors.NotFound, "code"),
        ("AM04", {"mandate_effect": "explode"}, errors.ConfigurationError, "mandate_effect"),
        ("AM04", {"max_retries": 9}, errors.ConfigurationError, "max_retries"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(db, code, kwargs, error, field):
    ledger.creditor(db)
    with pytest.raises(error) as caught, db.transaction() as s:
        policies.set_policy(s, "martin", code, clock=CLOCK, **kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("code", "kwargs", "field"),
    [
        ("AC04", {"max_retries": 2}, "max_retries"),  # account closed
        ("MD07", {"max_retries": 1}, "max_retries"),  # debtor deceased
        ("MD01", {"mandate_effect": "none"}, "mandate_effect"),  # no valid mandate
        ("AC01", {"mandate_effect": "none", "max_retries": 1}, "max_retries"),
    ],
)
def test_a_code_that_makes_the_mandate_unusable_cannot_be_set_to_collect_again(db, code, kwargs, field):
    # `returns policy set MD07 --max-retries 1` was accepted: a debit of a deceased debtor
    # presented again, a closed account debited again, each answered by another R-transaction
    # and its fee. RULES.md section 5 (EPC173-14): no retry, the mandate is unusable.
    ledger.creditor(db)
    with pytest.raises(errors.ConfigurationError) as caught, db.transaction() as s:
        policies.set_policy(s, "martin", code, clock=CLOCK, **kwargs)
    assert caught.value.field == field and "unusable" in str(caught.value)
    with db.reader() as s:
        assert not any(own for _, own in policies.effective_policies(s, "martin"))  # nothing stored


def test_a_code_that_makes_the_mandate_unusable_may_hold_it_instead_of_blocking_it(db):
    # AC06: the debtor may lift the block on direct debits; staff then release the mandate.
    ledger.creditor(db)
    with db.transaction() as s:
        policy = policies.set_policy(s, "martin", "AC06", mandate_effect="hold", max_retries=0, clock=CLOCK)
    assert (policy.mandate_effect, policy.max_retries) == (MandateEffect.HOLD, 0)


def test_policy_cli_sets_and_shows_an_override(db, database_url, tmp_path):
    ledger.creditor(db)
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    runner = CliRunner()
    set_result = runner.invoke(app, ["returns", "policy", "set", "AM04", "--creditor", "martin", "--max-retries", "0",
                                     "--json", "--config", str(config)])
    assert set_result.exit_code == 0, set_result.output
    shown = runner.invoke(app, ["returns", "policy", "show", "--creditor", "martin", "--json", "--config", str(config)])
    import json

    am04 = next(p for p in json.loads(shown.stdout) if p["code"] == "AM04")
    assert (am04["max_retries"], am04["overridden"]) == (0, True)
