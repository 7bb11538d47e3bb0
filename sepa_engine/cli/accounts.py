"""``sepa-engine accounts ...``: what the customer portals ask of the engine.

Every command is scoped by ``--creditor``; every mutation takes ``--idempotency-key``
(repeating a call with the same key returns the first result and changes nothing) and,
where a person acts, ``--actor``. Documents come in with ``--file FILE`` (``-`` for stdin),
checked against ``schemas/accounts/``, or as options; ``--json`` prints one JSON document.

Exit codes: 0 done; 1 refused (the request breaks a rule: nothing due, amount above the
collectable balance, automatic account, no usable mandate, unknown invoice, key reused with
other content...; nothing was written); 64 bad arguments or configuration.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from sepa_engine import errors, private_files
from sepa_engine.cli import context
from sepa_engine.cli.context import ConfigOption, JsonOption
from sepa_engine.cli.main import app
from sepa_engine.domain import money
from sepa_engine.exit_codes import ExitCode, for_error
from sepa_engine.services import (
    account_changes,
    account_documents,
    account_ledger,
    accounts,
    disputes,
    on_demand,
    schedule,
    statements,
)
from sepa_engine.services.account_inputs import (
    DETAIL_FIELDS,
    CreditorSettingsInput,
    DetailsInput,
    DisputedInvoice,
    DisputeInput,
    DisputeTransitionInput,
    ESignedMandateInput,
    GroupPaymentInput,
    GroupSelection,
    LedgerEntryInput,
    ModeChangeInput,
    PayNowInput,
    iso_datetime,
    read_date,
)

accounts_app = typer.Typer(help="Customer accounts: ledger, payments on demand, automatic debits, disputes.", no_args_is_help=True)
invoices_app = typer.Typer(help="Invoices on an account.", no_args_is_help=True)
credit_notes_app = typer.Typer(help="Credit notes on an account.", no_args_is_help=True)
fees_app = typer.Typer(help="Fees on an account.", no_args_is_help=True)
disputes_app = typer.Typer(help="Disputes on invoices and their follow-up.", no_args_is_help=True)
schedule_app = typer.Typer(help="The automatic schedule.", no_args_is_help=True)
prenotifications_app = typer.Typer(help="Pre-notifications of automatic debits.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
accounts_app.add_typer(invoices_app, name="invoices")
accounts_app.add_typer(credit_notes_app, name="credit-notes")
accounts_app.add_typer(fees_app, name="fees")
accounts_app.add_typer(disputes_app, name="disputes")
accounts_app.add_typer(schedule_app, name="schedule")
accounts_app.add_typer(prenotifications_app, name="prenotifications")

AccountArgument = typer.Argument(..., help="The account's reference at the creditor.")
CreditorOption = typer.Option(..., "--creditor", help="The creditor's code (every command is scoped by it).")
KeyOption = typer.Option(..., "--idempotency-key", "--key", help="Unique key of this call; the same key again changes nothing.")
ActorOption = typer.Option(..., "--actor", help="Who acts (a user or a service), kept in the history.")
FileOption = typer.Option(None, "--file", help="JSON document (schemas/accounts/), '-' for stdin.")
# A new electronically signed mandate given as options (set-mode to automatic, change-bank);
# _mandate_options checks they come together.
MandateReferenceOption = typer.Option(None, "--mandate-reference", help="New e-signed mandate: its reference (RUM).")
SignedAtOption = typer.Option(None, "--signed-at", help="New e-signed mandate: signature date and time with offset.")
IbanOption = typer.Option(None, "--iban", help="New e-signed mandate: IBAN to debit.")
BicOption = typer.Option(None, "--bic", help="New e-signed mandate: BIC (optional).")
SignerOption = typer.Option(None, "--signer", help="New e-signed mandate: name of the signer.")
EvidenceOption = typer.Option(None, "--evidence", help="New e-signed mandate: evidence id at the signature provider.")

@contextmanager
def _refusals() -> Iterator[None]:
    """Engine errors -> one line on stderr; refusals exit 1, configuration errors 64, a lock
    held by another run 75 (as every command)."""
    try:
        yield
    except errors.SepaEngineError as exc:
        code = for_error(exc)
        if code not in (ExitCode.USAGE, ExitCode.LOCK_BUSY):
            code = ExitCode.INVALID
        # One line, never wrapped: portals and scripts read it.
        context.stderr.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(int(code)) from None


def _document(path: str, schema: str) -> dict[str, Any]:
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise errors.NotFound("--file", path, f"cannot be read: {exc.strerror}") from None
    return account_documents.parse(text, schema, source=path)


def _date(option: str, value: str | None) -> dt.date | None:
    return read_date(option, value) if value is not None else None


def _print(text: str) -> None:
    context.stdout.print(text, markup=False, highlight=False, soft_wrap=True)


# --- the account ---------------------------------------------------------------------------
@accounts_app.command("show")
def show(
    account: str = AccountArgument,
    creditor: str = CreditorOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """The account: mode and schedule, mandate, details and what it owes."""
    with _refusals():
        with context.engine(config) as engine:
            view = engine.account(creditor, account)
    context.render(view.to_dict(), as_json, lambda: _draw_account(view))


def _draw_account(view: accounts.AccountView) -> None:
    document = view.to_dict()
    position = document["position"]
    assert isinstance(position, dict)
    rows = [
        ("account", view.reference), ("name", view.name), ("customer reference", view.customer_reference),
        ("collection mode", view.collection_mode),
        ("schedule", f"{view.schedule_frequency} on day {view.schedule_day}" if view.schedule_frequency else None),
        ("mandate", f"{view.mandate.reference} ({view.mandate.status}, {view.mandate.iban})" if view.mandate else None),
        ("balance due", position["balance_due"]), ("under dispute", position["under_dispute"]),
        ("already requested", position["requested"]), ("collectable", position["collectable"]),
        ("pay now possible", "yes" if view.can_pay_now else "no"),
    ]
    rows.extend((name.replace("_", " "), value) for name, value in view.details.items() if value)
    context.stdout.print(context.table(f"Account {view.reference} at {view.creditor_code}", ("field", "value"), rows))


@accounts_app.command("set-mode")
def set_mode(
    account: str = AccountArgument,
    creditor: str = CreditorOption,
    mode: str | None = typer.Option(None, "--mode", help="on_demand or automatic."),
    frequency: str | None = typer.Option(None, "--frequency", help="Automatic: monthly or quarterly."),
    day: int | None = typer.Option(None, "--day", help="Automatic: day of the month, 1 to 28."),
    mandate_reference: str | None = MandateReferenceOption,
    signed_at: str | None = SignedAtOption,
    iban: str | None = IbanOption,
    bic: str | None = BicOption,
    signer: str | None = SignerOption,
    evidence: str | None = EvidenceOption,
    reason: str | None = typer.Option(
        None, "--reason", help="Leaving automatic mode: why (staff only, --actor staff:NAME); kept in the history."
    ),
    file: str | None = FileOption,
    actor: str = ActorOption,
    key: str = KeyOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Switch between on demand and automatic (switching to automatic needs a new e-signed mandate; leaving it is
    for the creditor's staff, with a reason)."""
    with _refusals():
        if file is not None:
            data = ModeChangeInput.from_mapping(_document(file, account_documents.MODE_CHANGE))
        else:
            if mode is None:
                raise errors.InvalidFormat("--mode", None, "is required (or give --file)")
            signed = _mandate_options(mandate_reference, signed_at, iban, bic, signer, evidence)
            data = ModeChangeInput(mode=mode, frequency=frequency, day=day, mandate=signed, reason=reason)
        with context.engine(config) as engine:
            result = engine.set_collection_mode(creditor, account, data, actor=actor, idempotency_key=key)
    context.render(result.to_dict(), as_json, lambda: _draw_change(result))


def _mandate_options(
    reference: str | None, signed_at: str | None, iban: str | None, bic: str | None, signer: str | None, evidence: str | None
) -> ESignedMandateInput | None:
    given = {"--mandate-reference": reference, "--signed-at": signed_at, "--iban": iban, "--signer": signer, "--evidence": evidence}
    if all(value is None for value in given.values()) and bic is None:
        return None
    for option, value in given.items():
        if value is None:
            raise errors.InvalidFormat(option, None, "is required for a new electronically signed mandate")
    assert reference and signed_at and iban and signer and evidence
    return ESignedMandateInput(
        reference=reference, signed_at=iso_datetime("--signed-at", signed_at), iban=iban, signer_name=signer,
        evidence_id=evidence, bic=bic,
    )


@accounts_app.command("change-bank")
def change_bank(
    account: str = AccountArgument,
    creditor: str = CreditorOption,
    mandate_reference: str | None = MandateReferenceOption,
    signed_at: str | None = SignedAtOption,
    iban: str | None = IbanOption,
    bic: str | None = BicOption,
    signer: str | None = SignerOption,
    evidence: str | None = EvidenceOption,
    file: str | None = FileOption,
    actor: str = ActorOption,
    key: str = KeyOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """New bank details: register a new e-signed mandate that supersedes the old one."""
    with _refusals():
        if file is not None:
            data = ESignedMandateInput.from_mapping(_document(file, account_documents.ESIGNED_MANDATE))
        else:
            signed = _mandate_options(mandate_reference, signed_at, iban, bic, signer, evidence)
            if signed is None:
                raise errors.InvalidFormat("--mandate-reference", None, "and the other mandate options are required (or give --file)")
            data = signed
        with context.engine(config) as engine:
            result = engine.change_bank_details(creditor, account, data, actor=actor, idempotency_key=key)
    context.render(result.to_dict(), as_json, lambda: _draw_change(result))


_SET_HELP = f"FIELD=VALUE to change; fields: {', '.join(DETAIL_FIELDS)}."


@accounts_app.command("details")
def details(
    account: str = AccountArgument,
    creditor: str = CreditorOption,
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    clear: list[str] = typer.Option([], "--clear", help="FIELD to clear."),
    file: str | None = FileOption,
    actor: str | None = typer.Option(None, "--actor", help="Who changes the details (required to change)."),
    key: str | None = typer.Option(None, "--idempotency-key", "--key", help="Unique key of this change (required to change)."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the account's details and their history; with --set/--clear/--file, change them."""
    with _refusals():
        changes: dict[str, str | None] = {}
        if file is not None:
            changes.update(_document(file, account_documents.ACCOUNT_DETAILS))
        for item in set_:
            name, sep, value = item.partition("=")
            if not sep:
                raise errors.InvalidFormat("--set", item, "must be FIELD=VALUE")
            changes[name.strip()] = value
        for name in clear:
            changes[name.strip()] = None
        if changes:
            if actor is None or key is None:
                raise errors.InvalidFormat("--actor" if actor is None else "--idempotency-key", None, "is required to change details")
            data = DetailsInput(changes)
            with context.engine(config) as engine:
                result = engine.update_details(creditor, account, data, actor=actor, idempotency_key=key)
            context.render(result.to_dict(), as_json, lambda: _draw_change(result))
            return
        with context.engine(config) as engine:
            view, lines = engine.account(creditor, account), engine.account_history(creditor, account)
    document = {
        "creditor": view.creditor_code,
        "account": view.reference,
        "customer_reference": view.customer_reference,
        "details": dict(view.details),
        "history": [line.to_dict() for line in lines],
    }
    context.render(document, as_json, lambda: _draw_details(view, lines))


def _draw_details(view: accounts.AccountView, lines: tuple[account_changes.HistoryLine, ...]) -> None:
    rows = [("customer_reference", view.customer_reference)] + list(view.details.items())
    context.stdout.print(context.table(f"Details of {view.reference}", ("field", "value"), rows))
    context.stdout.print(context.table(
        "History", ("when", "who", "kind", "field", "old", "new"),
        [(line.changed_at.isoformat(), line.actor, line.kind, line.field, line.old_value, line.new_value) for line in lines],
    ))


def _draw_change(result: account_changes.ChangeResult) -> None:
    state = "recorded" if result.created else "already recorded (same key)"
    _print(f"Change {result.id} ({result.kind}) by {result.actor} {state}.")
    if result.fields:
        context.stdout.print(context.table(None, ("field", "old", "new"), result.fields))
    else:
        _print("Nothing changed.")


@accounts_app.command("settings")
def settings(
    creditor: str = CreditorOption,
    prenotification_days: int | None = typer.Option(None, "--prenotification-days", help="Days between a pre-notification and its debit."),
    group: str | None = typer.Option(None, "--group", help="Group code shared by creditors a customer may pay together."),
    file: str | None = FileOption,
    actor: str = ActorOption,
    key: str = KeyOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """A creditor's account settings: pre-notification lead time and group."""
    with _refusals():
        if file is not None:
            data = CreditorSettingsInput.from_mapping(_document(file, account_documents.CREDITOR_SETTINGS))
        else:
            data = CreditorSettingsInput(prenotification_days=prenotification_days, group_code=group)
        with context.engine(config) as engine:
            result = engine.set_creditor_settings(creditor, data, actor=actor, idempotency_key=key)
    context.render(result.to_dict(), as_json, lambda: _draw_change(result))


# --- ledger entries ------------------------------------------------------------------------
def _add_entry(kind: str) -> Callable[..., None]:
    def command(
        account: str = AccountArgument,
        creditor: str = CreditorOption,
        number: str | None = typer.Option(None, "--number", help="Document number."),
        issue_date: str | None = typer.Option(None, "--issue-date", help="Issue date (YYYY-MM-DD)."),
        amount: str | None = typer.Option(None, "--amount", help="Amount in euros, e.g. 120.50."),
        due_date: str | None = typer.Option(None, "--due-date", help="Due date (YYYY-MM-DD)."),
        label: str | None = typer.Option(None, "--label", help="Text shown on statements."),
        applies_to: str | None = typer.Option(None, "--applies-to", help="Credit notes: the invoice it settles."),
        file: str | None = FileOption,
        key: str = KeyOption,
        config: str | None = ConfigOption,
        as_json: bool = JsonOption,
    ) -> None:
        with _refusals():
            if file is not None:
                document = _document(file, account_documents.LEDGER_ENTRY)
                if document.get("kind") != kind:
                    raise errors.InvalidFormat("kind", document.get("kind"), f"must be {kind} for this command")
                data = LedgerEntryInput.from_mapping(document)
            else:
                for option, value in (("--number", number), ("--issue-date", issue_date), ("--amount", amount)):
                    if value is None:
                        raise errors.InvalidFormat(option, None, "is required (or give --file)")
                assert number is not None and amount is not None
                data = LedgerEntryInput(
                    kind=kind, number=number, issue_date=read_date("--issue-date", issue_date), amount=amount,
                    due_date=_date("--due-date", due_date), label=label, applies_to=applies_to,
                )
            with context.engine(config) as engine:
                result = engine.record_entry(creditor, account, data, idempotency_key=key)
        context.render(result.to_dict(), as_json, lambda: _print(
            f"{result.kind} {result.number} of {money.format_cents(result.amount_cents)} "
            f"{'recorded' if result.created else 'already recorded (same key)'} on {result.account_reference}."))

    command.__doc__ = f"Record a {kind.replace('_', ' ')} on an account."
    return command


invoices_app.command("add")(_add_entry("invoice"))
credit_notes_app.command("add")(_add_entry("credit_note"))
fees_app.command("add")(_add_entry("fee"))


@accounts_app.command("statement")
def statement(
    account: str = AccountArgument,
    creditor: str = CreditorOption,
    all_entries: bool = typer.Option(False, "--all", help="Every entry of the last 12 months (default: unpaid invoices)."),
    date_from: str | None = typer.Option(None, "--from", help="From this issue date (YYYY-MM-DD)."),
    date_to: str | None = typer.Option(None, "--to", help="Up to this issue date (YYYY-MM-DD)."),
    document: str | None = typer.Option(None, "--document", help="Only this document number."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """The account statement, each line with its running balance."""
    with _refusals():
        if as_csv and as_json:
            raise errors.InvalidFormat("--csv", None, "and --json exclude each other")
        start, end = _date("--from", date_from), _date("--to", date_to)
        with context.engine(config) as engine:
            result = engine.statement(
                creditor, account, all_entries=all_entries, date_from=start, date_to=end, document=document
            )
    if as_csv:
        sys.stdout.write(result.to_csv())
        return
    context.render(result.to_dict(), as_json, lambda: _draw_statement(result))


def _kind_shown(line: statements.StatementLine) -> str:
    return "payment on account" if line.on_account else line.kind


def _draw_statement(result: statements.Statement) -> None:
    title = "Unpaid invoices" if result.kind == statements.UNPAID else "Statement"
    rows = [
        ((line.date or line.issue_date).isoformat(), _kind_shown(line), line.number,
         line.due_date.isoformat() if line.due_date else "",
         account_ledger.signed_amount(line.signed_cents), account_ledger.signed_amount(line.balance_cents),
         money.format_cents(line.open_cents) if line.open_cents is not None else "", "yes" if line.under_dispute else "",
         f"{line.status} {line.collection_date.isoformat()}" if line.status and line.collection_date else "")
        for line in result.lines
    ]
    context.stdout.print(context.table(
        f"{title} of {result.account_reference} at {result.creditor_code}",
        ("date", "kind", "number", "due", "amount", "balance", "open", "disputed", "debit"), rows,
        right=("amount", "balance", "open"),
    ))
    _print(f"Balance due: {account_ledger.signed_amount(result.balance_due_cents)}")


# --- paying --------------------------------------------------------------------------------
@accounts_app.command("pay-now")
def pay_now(
    account: str = AccountArgument,
    creditor: str = CreditorOption,
    amount: str | None = typer.Option(None, "--amount", help="Euros to pay (part or all of the balance)."),
    invoice: list[str] = typer.Option([], "--invoice", help="An invoice to pay (repeat for several)."),
    file: str | None = FileOption,
    key: str = KeyOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Debit the account now (next business day): an amount, or a selection of invoices."""
    with _refusals():
        if file is not None:
            data = PayNowInput.from_mapping(_document(file, account_documents.PAY_NOW))
        else:
            data = PayNowInput(amount=amount, invoices=tuple(invoice) if invoice else None)
        with context.engine(config) as engine:
            result = engine.pay_now(creditor, account, data, idempotency_key=key)
    context.render(result.to_dict(), as_json, lambda: _draw_payment(result))


def _draw_payment(result: on_demand.PaymentResult) -> None:
    state = "requested" if result.created else "already requested (same key)"
    _print(
        f"Debit {result.end_to_end_id} of {money.format_cents(result.amount_cents)} on {result.account_reference} "
        f"at {result.creditor_code} {state} for {result.requested_date.isoformat()} ({result.remittance})."
    )
    for problem in result.problems:
        _print(f"  problem: {problem['message']}")


@accounts_app.command("pay-group")
def pay_group(
    customer: str | None = typer.Option(None, "--customer", help="The customer's reference across the group."),
    select: list[str] = typer.Option([], "--select", help="CREDITOR:INVOICE[,INVOICE...] (repeat per creditor)."),
    file: str | None = FileOption,
    key: str = KeyOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Pay invoices at several creditors of a group: one debit per creditor, all or none."""
    with _refusals():
        if file is not None:
            data = GroupPaymentInput.from_mapping(_document(file, account_documents.GROUP_PAYMENT))
        else:
            if customer is None:
                raise errors.InvalidFormat("--customer", None, "is required (or give --file)")
            selections = []
            for item in select:
                code, sep, numbers = item.partition(":")
                if not sep or not numbers:
                    raise errors.InvalidFormat("--select", item, "must be CREDITOR:INVOICE[,INVOICE...]")
                selections.append(GroupSelection(creditor=code, invoices=tuple(n.strip() for n in numbers.split(",") if n.strip())))
            data = GroupPaymentInput(customer_reference=customer, selections=tuple(selections))
        with context.engine(config) as engine:
            result = engine.pay_group(data, idempotency_key=key)

    def draw() -> None:
        for payment in result.payments:
            _draw_payment(payment)
        _print(f"Total {money.format_cents(result.amount_cents)} for customer {result.customer_reference}.")

    context.render(result.to_dict(), as_json, draw)


@accounts_app.command("book-payments")
def book_payments(
    creditor: str | None = typer.Option(None, "--creditor", help="Only this creditor."),
    batch: int | None = typer.Option(None, "--batch", help="Only the debits of this file."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Book a payment entry for every debit that reached the bank and has none yet."""
    with _refusals():
        with context.engine(config) as engine:
            result = engine.book_payments(creditor=creditor, batch_id=batch)
    context.render(result.to_dict(), as_json, lambda: _print(
        f"{result.booked} payment(s) booked, {money.format_cents(result.amount_cents)}."))


# --- disputes ------------------------------------------------------------------------------
@disputes_app.command("open")
def open_dispute(
    account: str = AccountArgument,
    creditor: str = CreditorOption,
    invoice: list[str] = typer.Option([], "--invoice", help="A contested invoice, NUMBER or NUMBER=AMOUNT (repeat)."),
    reason: str | None = typer.Option(None, "--reason", help="Why the customer contests them."),
    file: str | None = FileOption,
    actor: str = ActorOption,
    key: str = KeyOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Open a dispute on invoices: they are not collected while it is open."""
    with _refusals():
        if file is not None:
            data = DisputeInput.from_mapping(_document(file, account_documents.DISPUTE))
        else:
            if reason is None:
                raise errors.InvalidFormat("--reason", None, "is required (or give --file)")
            lines = []
            for item in invoice:
                number, sep, amount = item.partition("=")
                lines.append(DisputedInvoice(number=number, amount=amount if sep else None))
            data = DisputeInput(reason=reason, invoices=tuple(lines))
        with context.engine(config) as engine:
            result = engine.open_dispute(creditor, account, data, actor=actor, idempotency_key=key)
    context.render(result.to_dict(), as_json, lambda: _draw_dispute(result))


@disputes_app.command("transition")
def transition(
    dispute: int = typer.Argument(..., help="The dispute's id."),
    creditor: str = CreditorOption,
    to: str | None = typer.Option(None, "--to", help="under_review, accepted or rejected."),
    note: str | None = typer.Option(None, "--note", help="Comment kept in the history."),
    credit_note_number: str | None = typer.Option(None, "--credit-note-number", help="Accepting: the credit note's number."),
    file: str | None = FileOption,
    actor: str = ActorOption,
    key: str = KeyOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Move a dispute on (accepting books a credit note for the disputed amount)."""
    with _refusals():
        if file is not None:
            data = DisputeTransitionInput.from_mapping(_document(file, account_documents.DISPUTE_TRANSITION))
        else:
            if to is None:
                raise errors.InvalidFormat("--to", None, "is required (or give --file)")
            data = DisputeTransitionInput(status=to, note=note, credit_note_number=credit_note_number)
        with context.engine(config) as engine:
            result = engine.transition_dispute(creditor, dispute, data, actor=actor, idempotency_key=key)
    context.render(result.to_dict(), as_json, lambda: _draw_dispute(result))


@disputes_app.command("list")
def list_disputes(
    creditor: str = CreditorOption,
    account: str | None = typer.Option(None, "--account", help="Only this account."),
    status: str | None = typer.Option(None, "--status", help="Only disputes in this status."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Disputes of a creditor with their invoices and history."""
    with _refusals():
        with context.engine(config) as engine:
            rows = engine.disputes(creditor, account=account, status=status)

    def draw() -> None:
        context.stdout.print(context.table(
            f"Disputes at {creditor}", ("id", "account", "status", "invoices", "amount", "opened by", "opened at", "credit note"),
            [(d.id, d.account_reference, d.status, ", ".join(n for n, _ in d.invoices), money.format_cents(d.amount_cents),
              d.opened_by, d.opened_at.isoformat(), d.credit_note) for d in rows],
            right=("id", "amount"),
        ))

    context.render({"disputes": [d.to_dict() for d in rows]}, as_json, draw)


@disputes_app.command("show")
def show_dispute(
    dispute: int = typer.Argument(..., help="The dispute's id."),
    creditor: str = CreditorOption,
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """One dispute and its history."""
    with _refusals():
        with context.engine(config) as engine:
            result = engine.dispute(creditor, dispute)
    context.render(result.to_dict(), as_json, lambda: _draw_dispute(result))


def _draw_dispute(result: disputes.DisputeView) -> None:
    _print(f"Dispute {result.id} on {result.account_reference} at {result.creditor_code}: {result.status} "
           f"({money.format_cents(result.amount_cents)}; {result.reason})")
    context.stdout.print(context.table(
        None, ("when", "who", "status", "note"), [(e.at.isoformat(), e.actor, e.status, e.note) for e in result.history]
    ))
    if result.credit_note:
        _print(f"Credit note {result.credit_note}.")


# --- the automatic schedule ----------------------------------------------------------------
@schedule_app.command("run")
def run_schedule(
    date: str | None = typer.Option(None, "--date", help="Run date (YYYY-MM-DD); default: today."),
    creditor: str | None = typer.Option(None, "--creditor", help="Only this creditor."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Create this period's automatic debits and their pre-notifications (safe to run again)."""
    with _refusals():
        run_date = _date("--date", date)
        with context.engine(config) as engine:
            report = engine.schedule_automatic(run_date=run_date, creditor=creditor)

    def draw() -> None:
        context.stdout.print(context.table(
            "Automatic debits", ("creditor", "account", "period", "outcome", "amount", "collection date", "moved"),
            [(i.creditor_code, i.account_reference, i.period, i.outcome, money.format_cents(i.amount_cents),
              i.collection_date.isoformat() if i.collection_date else "", "yes" if i.moved else "") for i in report.items],
            right=("amount",),
        ))

    context.render(report.to_dict(), as_json, draw)


@prenotifications_app.command("export")
def export_prenotifications(
    creditor: str = CreditorOption,
    date_from: str | None = typer.Option(None, "--from", help="Collection dates from (YYYY-MM-DD)."),
    date_to: str | None = typer.Option(None, "--to", help="Collection dates up to (YYYY-MM-DD)."),
    issued_on: str | None = typer.Option(None, "--issued-on", help="Only those issued on this date."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV (default)."),
    output: Path | None = typer.Option(None, "--output", help="Write to this file instead of stdout."),
    config: str | None = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Pre-notifications for the creditor's mailing system, as CSV or JSON."""
    with _refusals():
        if as_csv and as_json:
            raise errors.InvalidFormat("--csv", None, "and --json exclude each other")
        start, end, issued = _date("--from", date_from), _date("--to", date_to), _date("--issued-on", issued_on)
        with context.engine(config) as engine:
            records = engine.prenotifications(creditor, collection_from=start, collection_to=end, issued_on=issued)
    if as_json:
        import json

        text = json.dumps({"prenotifications": list(records)}, indent=2, ensure_ascii=False) + "\n"
    else:
        text = schedule.prenotifications_csv(records)
    if output is not None:
        with context.handled():
            private_files.write_new(output, text, "--output")
        print(f"{len(records)} pre-notification(s) written to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
