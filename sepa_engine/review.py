"""The summaries written beside each published file, for operations staff.

Two renderings of the same ``Review``: plain text (``<MsgId>.summary.txt``, one screen, for
a terminal or a mail) and a self-contained HTML page (``<MsgId>.html``, ``review_html.py``).
Both show: who collects, the totals per collection date and sequence type (recomputed from
the ledger's requests and checked against the file's NbOfTxs/CtrlSum), the ten largest
debits, the first collections (FRST), the amendments, and the requests the same run
refused for this creditor with their reason codes.

The review follows the file: its timeline (written, held, approved by whom, released, the
bank's answers: acknowledged, rejected, settled, returned, with reason codes and amounts,
and the status the file has now) is re-rendered at each change: after approval, and after
reconciliation touched the batch (``refresh``, one call once the transaction committed).
Each creditor has an index page, ``outbox/index-<creditor>.html``: its files and their
status, linked to their pages. It sits beside the creditors' folders, not in them, so the
bank's folder of a creditor whose files are all held is never created by it.

Personal data rule (both renderings), one rule per kind of field: debtor names and mandate
references are shown in full, because the staff must tell debtors apart and find the
mandate (a reason text that quotes a masked reference shows it in full too); debtor IBANs
are masked to country, check digits and last four characters (``FR76 **** **** 0189``),
old and new alike, which is enough to tell two accounts of one debtor apart and not enough
to reuse one. The summaries carry the file's own permissions (0600, owner-only).

Memory is bounded whatever the size of the file: every figure is a SQL aggregate or a
LIMITed query, and each list stops at ``LIST_LIMIT`` with "and N more".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.orm import Session

from sepa_engine import outbox
from sepa_engine.db.models import Batch, Creditor
from sepa_engine.db.repositories import review as repo
from sepa_engine.db.repositories.review import AmendedDebit, BankAnswer, Debit, Group, NamedParty, Refusal
from sepa_engine.domain.masking import mask_iban, mask_reference
from sepa_engine.domain.money import format_cents

log = structlog.get_logger("sepa_engine.review")

LARGEST = 10
LIST_LIMIT = 25


def summary_path(final: Path) -> Path:
    return final.with_name(final.stem + ".summary.txt")


def html_path(final: Path) -> Path:
    return final.with_name(final.stem + ".html")


def review_paths(final: Path) -> tuple[Path, Path]:
    """The summaries of a file, in the order they are written and moved (before the file)."""
    return summary_path(final), html_path(final)


@dataclass(frozen=True, slots=True)
class Review:
    file_name: str
    batch_id: int
    message_id: str
    version: str
    created: dt.datetime
    sha256: str | None
    creditor_code: str
    creditor_name: str
    creditor_identifier: str
    requires_approval: bool
    # The file's own group header (recorded when it was written and read back).
    file_count: int
    file_sum_cents: int
    groups: list[Group]
    largest: list[Debit]
    first: list[Debit]
    first_total: int
    amended: list[AmendedDebit]
    amended_total: int
    refused: list[Refusal]
    refused_total: int
    refused_by_code: list[tuple[str | None, int]]
    # The rules the file was checked against, the creditor's ultimate creditor (UltmtCdtr of
    # each block, if any), and the ones debits name themselves (UltmtCdtr of the transaction).
    bank_profile: str = "epc"
    ultimate_creditor: str | None = None
    ultimate_creditor_id: str | None = None
    debit_ultimate_creditors: list[NamedParty] = dataclasses.field(default_factory=list)
    debit_ultimate_creditors_total: int = 0
    # The ultimate debtors the debits carry from their mandates (UltmtDbtr).
    ultimate_debtors: list[NamedParty] = dataclasses.field(default_factory=list)
    ultimate_debtors_total: int = 0
    # The file's life so far (``timeline``) and its status now.
    status: str = ""
    written_at: dt.datetime | None = None
    held_at: dt.datetime | None = None
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_at: dt.datetime | None = None
    # Why a file was withdrawn, superseded or failed (batches.failure).
    failure: str | None = None
    answers: tuple[BankAnswer, ...] = ()

    @property
    def totals_count(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def totals_sum_cents(self) -> int:
        return sum(g.sum_cents for g in self.groups)

    @property
    def totals_match(self) -> bool:
        return (self.totals_count, self.totals_sum_cents) == (self.file_count, self.file_sum_cents)


def gather(session: Session, batch: Batch, creditor: Creditor, final: Path) -> Review:
    first, first_total = repo.first_collections(session, batch.id, LIST_LIMIT)
    amended, amended_total = repo.amendments(session, batch.id, LIST_LIMIT)
    refused, refused_total = repo.refused_for_creditor_in_run(session, batch.run_id, creditor.id, LIST_LIMIT)
    ultimates, ultimates_total = repo.debit_ultimate_creditors(session, batch.id, LIST_LIMIT)
    debtors, debtors_total = repo.debit_ultimate_debtors(session, batch.id, LIST_LIMIT)
    return Review(
        file_name=final.name,
        batch_id=batch.id,
        message_id=batch.message_id,
        version=batch.version,
        created=batch.created_at.astimezone(ZoneInfo(creditor.timezone)),
        sha256=batch.sha256,
        creditor_code=creditor.code,
        creditor_name=creditor.name,
        creditor_identifier=creditor.creditor_identifier,
        requires_approval=bool(creditor.requires_approval),
        file_count=batch.count,
        file_sum_cents=batch.sum_cents,
        groups=repo.totals_by_date_and_type(session, batch.id),
        largest=repo.largest_debits(session, batch.id, LARGEST),
        first=first,
        first_total=first_total,
        amended=amended,
        amended_total=amended_total,
        refused=refused,
        refused_total=refused_total,
        refused_by_code=list(repo.refused_reasons(session, batch.run_id, creditor.id)),
        bank_profile=creditor.bank_profile,
        ultimate_creditor=creditor.ultimate_creditor_name,
        ultimate_creditor_id=creditor.ultimate_creditor_id,
        debit_ultimate_creditors=ultimates,
        debit_ultimate_creditors_total=ultimates_total,
        ultimate_debtors=debtors,
        ultimate_debtors_total=debtors_total,
        status=batch.status,
        written_at=_local(batch.written_at, creditor.timezone),
        held_at=_local(batch.held_at, creditor.timezone),
        approved_by=batch.approved_by,
        approved_at=_local(batch.approved_at, creditor.timezone),
        published_at=_local(batch.published_at, creditor.timezone),
        withdrawn_by=batch.withdrawn_by,
        withdrawn_at=_local(batch.withdrawn_at, creditor.timezone),
        failure=batch.failure,
        answers=tuple(
            dataclasses.replace(answer, imported_at=answer.imported_at.astimezone(ZoneInfo(creditor.timezone)))
            for answer in repo.bank_answers(session, batch.id)
        ),
    )


def party_words(name: str | None, identifier: str | None) -> str:
    """An UltmtCdtr as the review shows it: its name and identifier, either may be absent."""
    return ", ".join([*([name] if name else []), *([f"identifier {identifier}"] if identifier else [])])


def block_ultimate_creditor(review: Review) -> str:
    """The creditor's ultimate creditor, written in each block (empty when it has none)."""
    return party_words(review.ultimate_creditor, review.ultimate_creditor_id)


def _local(moment: dt.datetime | None, timezone: str) -> dt.datetime | None:
    return moment.astimezone(ZoneInfo(timezone)) if moment is not None else None


_ANSWER_WORDS = {
    "settled": "settled (credited)", "rejected": "rejected", "returned": "returned", "refunded": "refunded",
    "reversed": "reversed", "accepted": "acknowledged", "unknown": "not understood",
}
# What the file's status says once the bank has answered.
STATUS_WORDS = {
    "planned": "planned", "written": "written", "awaiting_approval": "held for approval", "published": "handed to the bank",
    "failed": "failed", "acknowledged": "acknowledged by the bank", "partly_rejected": "partly rejected",
    "rejected": "rejected", "settled": "settled", "settled_with_rejects": "settled, except the rejected debits",
    "withdrawn": "withdrawn at review: never sent, its debits back in the queue",
}


def timeline(review: Review) -> list[tuple[str, str]]:
    """(when, what) lines of the file's life, oldest first; the last says where it stands."""
    events: list[tuple[str, str]] = []
    if review.written_at is not None:
        events.append((_when(review.written_at), f"written: {review.file_count} debits, {format_cents(review.file_sum_cents)} EUR"))
    held = review.held_at
    if held is None and (review.approved_at is not None or review.status == "awaiting_approval"):
        held = review.written_at  # held before migration 0009, which never said when: its writing is the nearest
    if held is not None:
        events.append((_when(held), f"held in outbox/{outbox.PENDING_FOLDER}/ for approval"))
    if review.approved_at is not None:
        events.append((_when(review.approved_at), f"approved by {review.approved_by}"))
    if review.withdrawn_at is not None:
        events.append((_when(review.withdrawn_at), review.failure or f"withdrawn at review by {review.withdrawn_by}"))
    if review.published_at is not None and review.status != "awaiting_approval":
        events.append((_when(review.published_at), "released to the bank's folder"))
    for answer in review.answers:
        code = f" {answer.reason_code}" if answer.reason_code else ""
        if answer.kind == "accepted":
            # One row per batch (``accepted:<batch>``): the file was acknowledged; what of it
            # was rejected, if anything, is on its own lines.
            dated = f" (report of {answer.dated.isoformat()})" if answer.dated else ""
            events.append((
                _when(answer.imported_at), f"{answer.message or 'bank file'} {answer.file_name}: file acknowledged{code}{dated}",
            ))
            continue
        events.append((
            _when(answer.imported_at),
            f"{answer.message or 'bank file'} {answer.file_name}: {answer.count} {_ANSWER_WORDS.get(answer.kind, answer.kind)}"
            f"{code}, {format_cents(answer.sum_cents)} EUR",
        ))
    events.append(("now", STATUS_WORDS.get(review.status, review.status)))
    return events


def _when(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""


def refusal_reason(refusal: Refusal) -> str:
    """The reason text with the mandate reference as the review shows it: in full (the error
    that refused the request masked it, as logs and API answers do)."""
    reason = refusal.reason or ""
    reference = refusal.mandate_reference
    if reference and len(reference) > 4:
        reason = reason.replace(mask_reference(reference), reference)
    return reason


def amendment_changes(amended: AmendedDebit, creditor_identifier: str = "") -> list[str]:
    """What changed since the bank last saw the mandate, one phrase per change, old -> new
    (``creditor_identifier``: the one this file carries, the new one of such a change)."""
    changes: list[str] = []
    if amended.original_mandate_reference:
        changes.append(f"mandate reference {amended.original_mandate_reference} -> {amended.debit.mandate_reference}")
    if amended.original_iban:
        before, after = mask_iban(amended.original_iban, fixed_width=True), mask_iban(amended.debit.iban, fixed_width=True)
        changes.append(f"IBAN {before} -> {after}")
    if amended.new_debtor_agent:
        now = mask_iban(amended.debit.iban, fixed_width=True)
        if amended.previous_iban and not amended.original_iban:
            changes.append(f"new debtor bank (SMNDA): IBAN {mask_iban(amended.previous_iban, fixed_width=True)} -> {now}")
        else:
            changes.append(f"new debtor bank (SMNDA), IBAN now {now}")
    if amended.original_creditor_identifier:
        now_used = creditor_identifier or "(this file's)"
        changes.append(f"creditor identifier {amended.original_creditor_identifier} -> {now_used}")
    return changes


def approval_line(review: Review) -> str:
    if not review.requires_approval:
        return "not required"
    return f"required: held in outbox/{outbox.PENDING_FOLDER}/ until `sepa-engine batch approve {review.batch_id}`"


def more(shown: int, total: int) -> str:
    return f"and {total - shown} more" if total > shown else ""


# --- text ---------------------------------------------------------------------------------


def render_text(review: Review) -> str:
    check = "equals the file's NbOfTxs and CtrlSum" if review.totals_match else (
        f"DOES NOT MATCH the file's NbOfTxs {review.file_count} / CtrlSum {format_cents(review.file_sum_cents)}"
    )
    lines = [
        f"pain.008 file      {review.file_name}",
        f"batch              {review.batch_id}",
        f"creditor           {review.creditor_name} ({review.creditor_code}), identifier {review.creditor_identifier}",
        f"message id         {review.message_id}   version {review.version}",
        f"bank profile       {review.bank_profile} (checked against its rules)",
        *([f"ultimate creditor  {block_ultimate_creditor(review)} (unless a debit names its own)"]
          if block_ultimate_creditor(review) else []),
        *(f"  named by debits  {party_words(u.name, u.identifier)}: {u.count} debit(s)" for u in review.debit_ultimate_creditors),
        *([f"  and {review.debit_ultimate_creditors_total - len(review.debit_ultimate_creditors)} more"]
          if review.debit_ultimate_creditors_total > len(review.debit_ultimate_creditors) else []),
        *(f"ultimate debtor    {party_words(u.name, u.identifier)}: {u.count} debit(s), from their mandates"
          for u in review.ultimate_debtors),
        *([f"  and {more_parties} more"] if (more_parties := review.ultimate_debtors_total - len(review.ultimate_debtors)) > 0 else []),
        f"created            {review.created.isoformat()}",
        f"transactions       {review.file_count}",
        f"control sum        {format_cents(review.file_sum_cents)} EUR",
        f"sha256             {review.sha256}",
        f"approval           {approval_line(review)}",
        f"status             {STATUS_WORDS.get(review.status, review.status)}",
        "",
        "timeline",
        *(f"  {when:<27}{what}" for when, what in timeline(review)),
        "",
        f"totals per creditor, collection date and sequence type ({check})",
        f"  {'creditor':<16}{'collection date':<16}{'type':<6}{'count':>8}{'sum (EUR)':>18}",
    ]
    for group in review.groups:
        lines.append(
            f"  {review.creditor_code:<16}{group.collection_date.isoformat():<16}{group.sequence_type:<6}"
            f"{group.count:>8}{format_cents(group.sum_cents):>18}"
        )
    lines.append(f"  {review.creditor_code:<16}{'total':<22}{review.totals_count:>8}{format_cents(review.totals_sum_cents):>18}")

    lines += ["", f"largest debits ({len(review.largest)})"]
    lines += [_debit_line(d) for d in review.largest]

    lines += ["", f"first collections (FRST): {review.first_total}"]
    lines += [_debit_line(d) for d in review.first]
    lines += _more_line(len(review.first), review.first_total)

    lines += ["", f"amendments: {review.amended_total}"]
    for amended in review.amended:
        lines.append(f"{_debit_line(amended.debit)}")
        lines += [f"      {change}" for change in amendment_changes(amended, review.creditor_identifier)]
    lines += _more_line(len(review.amended), review.amended_total)

    by_code = ", ".join(f"{code or '-'} {n}" for code, n in review.refused_by_code)
    lines += ["", f"refused in this run: {review.refused_total}" + (f" ({by_code})" if by_code else "")]
    for refusal in review.refused:
        lines.append(
            f"  {refusal.end_to_end_id:<36}{format_cents(refusal.amount_cents):>14}  {refusal.reason_code or '':<6}"
            f"{refusal.debtor_name}, mandate {refusal.mandate_reference}: {refusal_reason(refusal)}"
        )
    lines += _more_line(len(review.refused), review.refused_total)
    return "\n".join(lines) + "\n"


def _debit_line(debit: Debit) -> str:
    return (
        f"  {debit.end_to_end_id:<36}{format_cents(debit.amount_cents):>14}  {debit.sequence_type or '':<5}"
        f"{debit.debtor_name}, {mask_iban(debit.iban, fixed_width=True)}, mandate {debit.mandate_reference}"
    )


def _more_line(shown: int, total: int) -> list[str]:
    text = more(shown, total)
    return [f"  ... {text}"] if text else []


# --- writing --------------------------------------------------------------------------------


def render_summary(session: Session, batch: Batch, creditor: Creditor, final: Path) -> str:
    return render_text(gather(session, batch, creditor, final))


def write_summary(
    session: Session, batch: Batch, creditor: Creditor, final: Path, *, index_of: Path | None = None,
) -> tuple[Path, Path]:
    """Write the text and HTML summaries beside ``final``: staged owner-only, then renamed;
    then the creditor's index, the one of ``index_of`` (a creditor's folder, held or
    released; by default ``final``'s).

    Unlike the pain.008 file, a summary may be replaced (a recovered run writes it again
    from the same ledger), so it goes in with ``outbox.replace`` rather than ``publish``.
    """
    from sepa_engine.review_html import render_html

    review = gather(session, batch, creditor, final)
    text_target, html_target = review_paths(final)
    for target, content in ((text_target, render_text(review)), (html_target, render_html(review))):
        _replace(target, content)
    write_index(session, creditor, index_of or final.parent)
    return text_target, html_target


def _replace(target: Path, content: str) -> None:
    data = content.encode("utf-8")

    def write(fh: BinaryIO) -> int:
        return fh.write(data)

    tmp, _ = outbox.stage(target, write)
    outbox.replace(tmp, target)


INDEX_LIMIT = 200


def index_path(final: Path) -> Path:
    """``outbox/index-<creditor>.html`` for a file in ``outbox/<creditor>/`` or held in
    ``outbox/pending/<creditor>/``."""
    folder = final.parent
    outbox_dir = folder.parent.parent if folder.parent.name == outbox.PENDING_FOLDER else folder.parent
    return outbox_dir / f"index-{folder.name}.html"


def write_index(session: Session, creditor: Creditor, folder: Path) -> Path:
    """The creditor's index page: its latest files, their status and totals, each linked to
    its review page (bounded: the latest ``INDEX_LIMIT``)."""
    from sepa_engine.review_html import render_index

    target = index_path(folder / "file.xml")
    files, total = repo.creditor_files(session, creditor.id, INDEX_LIMIT)
    _replace(target, render_index(creditor.name, creditor.code, files, total, target.parent))
    return target


def refresh(db: Any, message_ids: Iterable[str]) -> list[Path]:
    """Write the reviews of these batches again from the ledger (after reconciliation
    committed: the bank's answers join the timeline). A batch whose file has no recorded
    place, or whose folder is gone, is skipped: the review is derived, never the record."""
    written: list[Path] = []
    wanted = sorted(set(message_ids))
    if not wanted:
        return written
    with db.reader() as session:
        for batch, creditor in repo.batches_with_creditor(session, wanted):
            if not batch.path or not Path(batch.path).parent.is_dir():
                continue
            try:
                written.extend(write_summary(session, batch, creditor, Path(batch.path)))
            except OSError as exc:
                log.warning("review.not_refreshed", batch_id=batch.id, error=str(exc))
    return written
