from __future__ import annotations

import json

import structlog

from sepa_engine import logs

IBAN = "FR7630006000011234567890189"


def test_ibans_names_and_mandate_references_are_masked_in_json_logs(capsys):
    logs.configure(json_lines=True)
    structlog.get_logger("t").info(
        "mandate.registered", iban=IBAN, debtor_name="Jeanne Dupont", mandate_reference="RUM-2026-000123",
        note=f"bank details changed to {IBAN[:4]} {IBAN[4:8]} {IBAN[8:12]} {IBAN[12:16]} {IBAN[16:20]} {IBAN[20:24]} {IBAN[24:]}",
    )
    err = capsys.readouterr().err
    event = json.loads(err)
    assert IBAN not in err and "Jeanne" not in err and "RUM-2026-000123" not in err
    assert event["iban"] == "FR76*******************0189"
    assert event["debtor_name"] == "J***** D*****"
    assert event["event"] == "mandate.registered" and event["level"] == "info"
    assert "0189" in event["note"] and "3000 6000" not in event["note"]


def test_logs_go_to_stderr_never_stdout(capsys):
    logs.configure(json_lines=True)
    structlog.get_logger("t").info("batch.published", batch_id=1)
    captured = capsys.readouterr()
    assert captured.out == "" and "batch.published" in captured.err


def test_message_ids_shaped_like_ibans_stay_readable(capsys):
    logs.configure(json_lines=True)
    structlog.get_logger("t").info("batch.published", message_id_text="file SE2026112313562103AA068E9D published")
    assert "SE2026112313562103AA068E9D" in capsys.readouterr().err


def _mod97_valid_message_id() -> str:
    # A message id shaped like an IBAN whose check digits happen to pass MOD 97-10, as about
    # one message id in 97 does.
    for suffix in range(100):
        token = f"SE2026112313562103AA068E{suffix:02d}"
        digits = "".join(str(int(char, 36)) for char in token[4:] + token[:4])
        if int(digits) % 97 == 1:
            return token
    raise AssertionError("no suffix passes")


def test_a_message_id_that_passes_the_iban_checksum_stays_readable_in_every_field(capsys):
    message_id = _mod97_valid_message_id()
    logs.configure(json_lines=True)
    structlog.get_logger("t").info(
        "batch.published", message_id=message_id, file=f"{message_id}.xml", error=f"file {message_id} refused"
    )
    event = json.loads(capsys.readouterr().err)
    assert event["message_id"] == message_id
    assert event["file"] == f"{message_id}.xml"
    assert message_id in event["error"]


def test_a_real_iban_in_free_text_is_still_masked_but_not_in_an_identifier_field(capsys):
    logs.configure(json_lines=True)
    structlog.get_logger("t").info("mandate.changed", error=f"refused {IBAN}", debtor_iban=IBAN, contact_name="Jeanne Dupont")
    err = capsys.readouterr().err
    assert IBAN not in err and "Jeanne" not in err


# Out of the frames' source lines, which a traceback shows: only the locals carry them.
_DEBTOR = (IBAN, "Jeanne Dupont")


def _failing_step(debtor_iban: str, debtor_name: str) -> None:
    raise ValueError(f"account {debtor_iban} refused")


def _log_a_failed_step() -> None:
    try:
        _failing_step(*_DEBTOR)
    except ValueError as exc:
        structlog.get_logger("t").error("job.step_failed", step="collect", error=str(exc), exc_info=True)


def test_a_failure_logged_as_json_carries_its_traceback_with_ibans_masked(capsys):
    # Under cron (JSON lines), a failed step was logged as '"exc_info": true': the traceback
    # the operator needs to diagnose it was lost.
    logs.configure(json_lines=True)
    _log_a_failed_step()
    err = capsys.readouterr().err
    event = json.loads(err)
    assert "exc_info" not in event
    assert "Traceback (most recent call last)" in event["exception"] and "_failing_step" in event["exception"]
    assert "ValueError: account FR76*******************0189 refused" in event["exception"]
    assert IBAN not in err


def test_a_failure_logged_on_a_terminal_shows_its_traceback_without_the_locals_of_each_frame(capsys):
    # On a terminal the traceback listed every frame's local variables: the debtor's IBAN and
    # name in clear, beside log lines that mask them.
    logs.configure(json_lines=False)
    _log_a_failed_step()
    err = capsys.readouterr().err
    assert "job.step_failed" in err and "Traceback (most recent call last)" in err and "_failing_step" in err
    assert IBAN not in err and "Jeanne" not in err
    assert "FR76*******************0189" in err


def test_a_database_error_logged_by_a_job_shows_neither_the_row_nor_the_parameters(db, capsys):
    # A statement the database refuses (a bug, a constraint) was logged with its parameters
    # (SQLAlchemy: "[parameters: (None, 'CUST-9', 'Jeanne Dupont', ...)]") or, on PostgreSQL,
    # the failing row ("DETAIL: Failing row contains (..., Jeanne Dupont, ...)"): a debtor's
    # name in clear in the nightly job's log, where free-text masking cannot know it is one.
    from sqlalchemy.exc import IntegrityError

    from sepa_engine.db.models import DebtorAccount
    from tests.ledger import T0

    logs.configure(json_lines=True)
    try:
        with db.transaction() as s:
            s.add(DebtorAccount(creditor_id=None, reference="CUST-9", name="Jeanne Dupont", created_at=T0))
            s.flush()
    except IntegrityError as exc:
        structlog.get_logger("t").error("job.step_failed", step="collect", error=str(exc), exc_info=True)
    event = json.loads(capsys.readouterr().err)
    assert "creditor_id" in event["error"] and "creditor_id" in event["exception"]  # still says what failed
    assert "Jeanne" not in event["error"] and "Jeanne" not in event["exception"]


def test_the_values_of_a_key_postgresql_quotes_are_hidden_and_its_columns_kept(capsys):
    logs.configure(json_lines=True)
    structlog.get_logger("t").error("serve.job_failed", error=(
        'duplicate key value violates unique constraint "uq_debtor_accounts_creditor_reference"\n'
        "DETAIL:  Key (creditor_id, reference)=(1, DUPONT JEANNE (LYON)) already exists."
    ))
    error = json.loads(capsys.readouterr().err)["error"]
    assert "Key (creditor_id, reference)=(values hidden) already exists." in error
    assert "DUPONT" not in error
