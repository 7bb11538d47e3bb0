"""What each reason code does, per creditor: the defaults of ``domain/reason_codes.py``
overlaid with the creditor's own choices (block the mandate, retry up to N times, open a
dispute on the invoices the debit paid, or nothing). Documented defaults:
``config/reason-codes.md``; reconciliation reads them through ``reconciliation.policy_for``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.db.repositories import returns as repo
from sepa_engine.db.returns_models import ReasonCodePolicy
from sepa_engine.domain import reason_codes
from sepa_engine.domain.reason_codes import MandateEffect, ReasonCode
from sepa_engine.services.reconciliation import policy_for

MAX_RETRIES_LIMIT = 5
_EPC = reason_codes.lookup("AC01").source


def effective_policies(session: Session, creditor_code: str) -> list[tuple[ReasonCode, bool]]:
    """Every known code's policy for this creditor, and whether the creditor overrides it."""
    creditor = _creditor(session, creditor_code)
    overridden = repo.policy_overrides(session, creditor.id)
    return [(policy_for(session, creditor.id, code), code in overridden) for code in sorted(reason_codes.REASON_CODES)]


def set_policy(
    session: Session,
    creditor_code: str,
    code: str,
    *,
    mandate_effect: str | None = None,
    max_retries: int | None = None,
    opens_dispute: bool | None = None,
    clock: Clock,
) -> ReasonCode:
    """Override one code for one creditor; unset fields keep the default. Setting the same
    values again changes nothing."""
    creditor = _creditor(session, creditor_code)
    normalised = (code or "").strip().upper()
    if normalised not in reason_codes.REASON_CODES:
        raise errors.NotFound("code", code, "is not a reason code this engine knows (see config/reason-codes.md)")
    if mandate_effect is not None:
        try:
            MandateEffect(mandate_effect)
        except ValueError:
            known = ", ".join(e.value for e in MandateEffect)
            raise errors.ConfigurationError("mandate_effect", mandate_effect, f"must be one of {known}") from None
    if max_retries is not None and not 0 <= max_retries <= MAX_RETRIES_LIMIT:
        raise errors.ConfigurationError("max_retries", max_retries, f"must be between 0 and {MAX_RETRIES_LIMIT}")
    _check_unusable(reason_codes.REASON_CODES[normalised], mandate_effect, max_retries)
    row = repo.policy_override(session, creditor.id, normalised)
    if row is None:
        row = repo.add_policy(session, ReasonCodePolicy(creditor_id=creditor.id, code=normalised, created_at=clock.now()))
    if mandate_effect is not None:
        row.mandate_effect = mandate_effect
    if max_retries is not None:
        row.max_retries = max_retries
    if opens_dispute is not None:
        row.opens_dispute = opens_dispute
    session.flush()
    return policy_for(session, creditor.id, normalised)


def _check_unusable(default: ReasonCode, mandate_effect: str | None, max_retries: int | None) -> None:
    """A hard code says the account or the mandate can no longer be debited (RULES.md section
    5, after EPC173-14): a creditor may hold the mandate rather than block it, but never
    present the debit again nor go on collecting under that mandate. A bank would only refuse
    again, with another R-transaction and its fee."""
    if not default.is_hard():
        return
    why = f"for {default.code} ({default.meaning}): the scheme treats the mandate as unusable"
    if max_retries:
        raise errors.ConfigurationError("max_retries", max_retries, f"must be 0 {why}; a new mandate is needed")
    if mandate_effect == MandateEffect.NONE.value:
        raise errors.ConfigurationError(
            "mandate_effect", mandate_effect, f"must be block or hold {why}; its pending debits must not be collected",
        )


def _creditor(session: Session, code: str):  # type: ignore[no-untyped-def]
    creditor = registry_repo.creditor_by_code(session, code)
    if creditor is None:
        raise errors.NotFound("creditor", code, "is not a registered creditor")
    return creditor


def defaults_markdown() -> str:
    """The default policy table as Markdown: config/reason-codes.md is this text (a test
    keeps the two equal, so the documentation cannot drift from the code)."""
    lines = [
        "# What each reason code does by default",
        "",
        "Generated from `sepa_engine/domain/reason_codes.py` (built from RULES.md section 5) by",
        "`services/policies.defaults_markdown()`; a test keeps this file equal to it. The list is every",
        "R-transaction reason of the EPC SDD Core rulebook (EPC016-06, 2023 version 1.1, attribute AT-R3)",
        "with the ISO codes the EPC guidance on reason codes (EPC173-14 version 8.0, November 2024) gives",
        "them, and a few ISO 20022 external codes banks send beside them (source `ISO`). A creditor",
        "overrides any line with `sepa-engine returns policy set CODE --creditor C [--effect block|hold|none]",
        "[--max-retries N] [--dispute|--no-dispute]`; `returns policy show --creditor C` prints the table in force.",
        "A `hard` code says the account or the mandate can no longer be debited: it may hold the mandate",
        "instead of blocking it, but never retry nor leave the mandate alone (a bank would only refuse again).",
        "",
        "- **effect on the mandate**: `block` makes it unusable (its pending requests are cancelled) until a new",
        "  account or mandate; `hold` keeps it valid but collects nothing on it (its pending requests wait)",
        "  until `sepa-engine mandates release REF --creditor C`; `none` leaves it alone.",
        "- **retries**: how many new attempts reconciliation schedules. A retry is a new collection: it is",
        "  pre-notified (`accounts prenotifications export`, kind `retry`) and asks for the first TARGET day",
        "  once the creditor's agreed notice has run (`prenotification_days`, 14 by default). An OOFF or FNAL",
        "  collection is retried only after a reject (before settlement), never after a return or refund.",
        "- **dispute**: open a dispute on the invoices the debit paid.",
        "- **R-types**: the R-transactions that carry the code; **source**: the list it comes from.",
        "",
        "| code | meaning | severity | R-types | effect on the mandate | retries | dispute | source |",
        "|---|---|---|---|---|---:|---|---|",
    ]
    for code in sorted(reason_codes.REASON_CODES):
        entry = reason_codes.REASON_CODES[code]
        lines.append(
            f"| {code} | {entry.meaning} | {entry.severity.value} | {', '.join(sorted(t.value for t in entry.r_types))} | "
            f"{entry.mandate_effect.value} | {entry.max_retries} | {'yes' if entry.opens_dispute else 'no'} | "
            f"{'EPC' if entry.source == _EPC else 'ISO'} |"
        )
    lines += [
        "",
        "Any other code (or none) is sent to manual review: no retry, no effect on the mandate.",
        "",
        f"- `EPC`: {_EPC}",
        f"- `ISO`: {reason_codes.lookup('NARR').source}",
        "",
    ]
    return "\n".join(lines)
