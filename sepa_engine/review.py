"""The human-readable summary written beside each published file, for operations staff.

Plain text, one screen: who collects, when, how much, in which blocks, the largest debits
(IBANs and names masked), and the requests this run refused for the same creditor.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sepa_engine import outbox
from sepa_engine.db.models import Batch, Creditor
from sepa_engine.db.repositories import review as repo
from sepa_engine.domain.masking import mask_iban, mask_name
from sepa_engine.domain.money import format_cents


def summary_path(final: Path) -> Path:
    return final.with_name(final.stem + ".summary.txt")


def render_summary(session: Session, batch: Batch, creditor: Creditor, final: Path) -> str:
    lines = [
        f"pain.008 file      {final.name}",
        f"creditor           {creditor.name} ({creditor.code}), identifier {creditor.creditor_identifier}",
        f"message id         {batch.message_id}   version {batch.version}",
        f"created            {batch.created_at.astimezone(ZoneInfo(creditor.timezone)).isoformat()}",
        f"transactions       {batch.count}",
        f"control sum        {format_cents(batch.sum_cents)} EUR",
        f"sha256             {batch.sha256}",
        "",
        "payment blocks",
        f"  {'collection date':<16}{'type':<6}{'count':>8}{'sum (EUR)':>18}  PmtInfId",
    ]
    first_collections = 0
    for block in batch.blocks:
        if block.sequence_type == "FRST":
            first_collections += block.count
        lines.append(
            f"  {block.collection_date.isoformat():<16}{block.sequence_type:<6}{block.count:>8}"
            f"{format_cents(block.sum_cents):>18}  {block.payment_info_id}"
        )
    lines += [
        "",
        f"first collections  {first_collections}",
        f"amendments         {repo.count_amendments(session, batch.id)}",
        "",
        "largest debits",
    ]
    for e2e, cents, name, iban in repo.largest_debits(session, batch.id):
        lines.append(f"  {e2e:<36}{format_cents(cents):>16}  {mask_name(name):<30} {mask_iban(iban)}")
    refused = repo.refused_for_creditor_in_run(session, batch.run_id, creditor.id)
    lines += ["", f"refused in this run ({len(refused)}{'+' if len(refused) == 50 else ''})"]
    for e2e, code, reason in refused:
        lines.append(f"  {e2e:<36}{code or '':<6}{reason or ''}")
    return "\n".join(lines) + "\n"


def write_summary(session: Session, batch: Batch, creditor: Creditor, final: Path) -> Path:
    target = summary_path(final)
    text = render_summary(session, batch, creditor, final)
    tmp, _ = outbox.stage(target, lambda fh: fh.write(text.encode("utf-8")))
    # A summary may be rewritten (a recovered run writes it again): replace, atomically.
    os.replace(tmp, target)
    return target
