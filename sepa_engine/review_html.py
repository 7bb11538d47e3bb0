"""The review summary as one self-contained HTML page (``<MsgId>.html`` beside the file).

Self-contained: the CSS is inline, there is no script, no image, no font, no link to
anything outside the page, so it opens the same from a mail, a file share or an air-gapped
desk. Every value comes from upstream systems (debtor names, references, reasons) and is
HTML-escaped (``html.escape`` with quotes) where it is inserted; nothing else is. The
personal-data rule is the text summary's (``review.py``): names in full, IBANs masked.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from sepa_engine.db.repositories.review import Debit, FileLine
from sepa_engine.domain.masking import mask_iban
from sepa_engine.domain.money import format_cents
from sepa_engine.review import (
    STATUS_WORDS,
    Review,
    amendment_changes,
    approval_line,
    block_ultimate_creditor,
    more,
    party_words,
    refusal_reason,
    timeline,
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#1a1a1a;max-width:72em}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.25em .7em;text-align:left;vertical-align:top}
th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1.2em}dt{color:#555}dd{margin:0}
.ok{color:#176317}.bad{color:#a00;font-weight:bold}.more{color:#555;font-style:italic}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
"""


_NUMERIC = ' class="n"'


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(headers: list[tuple[str, bool]], rows: list[list[str]]) -> str:
    """``rows`` hold already-escaped cells; ``headers`` are (title, numeric)."""
    head = "".join(f"<th{_NUMERIC if numeric else ''}>{_e(title)}</th>" for title, numeric in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{_NUMERIC if numeric else ''}>{cell}</td>" for cell, (_t, numeric) in zip(row, headers, strict=True)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_DEBIT_HEADERS = [("end-to-end id", False), ("amount (EUR)", True), ("type", False), ("collection date", False),
                  ("debtor", False), ("IBAN", False), ("mandate", False)]


def _debit_cells(debit: Debit) -> list[str]:
    return [
        f"<code>{_e(debit.end_to_end_id)}</code>", _e(format_cents(debit.amount_cents)), _e(debit.sequence_type),
        _e(debit.collection_date.isoformat() if debit.collection_date else ""), _e(debit.debtor_name),
        f"<code>{_e(mask_iban(debit.iban, fixed_width=True))}</code>", _e(debit.mandate_reference),
    ]


def _more(shown: int, total: int) -> str:
    text = more(shown, total)
    return f'<p class="more">{_e(text)}</p>' if text else ""


def render_html(review: Review) -> str:
    match = (
        '<p class="ok">These totals equal the file\'s NbOfTxs and CtrlSum.</p>' if review.totals_match
        else f'<p class="bad">These totals DO NOT MATCH the file\'s NbOfTxs {_e(review.file_count)} / '
             f'CtrlSum {_e(format_cents(review.file_sum_cents))}.</p>'
    )
    groups = [
        [_e(review.creditor_code), _e(g.collection_date.isoformat()), _e(g.sequence_type), _e(g.count), _e(format_cents(g.sum_cents))]
        for g in review.groups
    ]
    groups.append([f"<strong>{_e(review.creditor_code)}</strong>", "<strong>total</strong>", "",
                   f"<strong>{_e(review.totals_count)}</strong>", f"<strong>{_e(format_cents(review.totals_sum_cents))}</strong>"])
    amendments = [
        _debit_cells(a.debit) + ["<br>".join(_e(change) for change in amendment_changes(a, review.creditor_identifier))] for a in review.amended
    ]
    refusals = [
        [f"<code>{_e(r.end_to_end_id)}</code>", _e(format_cents(r.amount_cents)), _e(r.debtor_name), _e(r.mandate_reference),
         _e(r.reason_code), _e(refusal_reason(r))]
        for r in review.refused
    ]
    by_code = ", ".join(f"{code or '-'}: {n}" for code, n in review.refused_by_code)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(review.file_name)}: {_e(review.creditor_name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(review.creditor_name)}: {_e(review.file_name)}</h1>",
        "<dl>",
        f"<dt>batch</dt><dd>{_e(review.batch_id)}</dd>",
        f"<dt>creditor</dt><dd>{_e(review.creditor_name)} ({_e(review.creditor_code)}), identifier "
        f"<code>{_e(review.creditor_identifier)}</code></dd>",
        f"<dt>message id</dt><dd><code>{_e(review.message_id)}</code> ({_e(review.version)})</dd>",
        f"<dt>bank profile</dt><dd>{_e(review.bank_profile)}</dd>",
        *([f"<dt>ultimate creditor</dt><dd>{_e(block_ultimate_creditor(review))} (unless a debit names its own)</dd>"]
          if block_ultimate_creditor(review) else []),
        *(f"<dt>ultimate creditor named by debits</dt><dd>{_e(party_words(u.name, u.identifier))}: {_e(u.count)} debit(s)</dd>"
          for u in review.debit_ultimate_creditors),
        *([f"<dt>ultimate creditors not listed</dt><dd>{_e(review.debit_ultimate_creditors_total - len(review.debit_ultimate_creditors))}"
           " more</dd>"] if review.debit_ultimate_creditors_total > len(review.debit_ultimate_creditors) else []),
        *(f"<dt>ultimate debtor</dt><dd>{_e(party_words(u.name, u.identifier))}: {_e(u.count)} debit(s), from their mandates</dd>"
          for u in review.ultimate_debtors),
        *([f"<dt>ultimate debtors not listed</dt><dd>{_e(more_parties)} more</dd>"]
          if (more_parties := review.ultimate_debtors_total - len(review.ultimate_debtors)) > 0 else []),
        f"<dt>created</dt><dd>{_e(review.created.isoformat())}</dd>",
        f"<dt>transactions</dt><dd>{_e(review.file_count)}</dd>",
        f"<dt>control sum</dt><dd>{_e(format_cents(review.file_sum_cents))} EUR</dd>",
        f"<dt>sha256</dt><dd><code>{_e(review.sha256)}</code></dd>",
        f"<dt>approval</dt><dd>{_e(approval_line(review))}</dd>",
        f"<dt>status</dt><dd><strong>{_e(STATUS_WORDS.get(review.status, review.status))}</strong></dd>",
        "</dl>",
        "<h2>Timeline</h2>",
        _table([("when", False), ("what", False)], [[_e(when), _e(what)] for when, what in timeline(review)]),
        "<h2>Totals per creditor, collection date and sequence type</h2>",
        _table([("creditor", False), ("collection date", False), ("type", False), ("count", True), ("sum (EUR)", True)], groups),
        match,
        f"<h2>Largest debits ({_e(len(review.largest))})</h2>",
        _table(_DEBIT_HEADERS, [_debit_cells(d) for d in review.largest]),
        f"<h2>First collections (FRST): {_e(review.first_total)}</h2>",
        _table(_DEBIT_HEADERS, [_debit_cells(d) for d in review.first]) if review.first else "<p>None.</p>",
        _more(len(review.first), review.first_total),
        f"<h2>Amendments: {_e(review.amended_total)}</h2>",
        _table(_DEBIT_HEADERS + [("what changed", False)], amendments) if review.amended else "<p>None.</p>",
        _more(len(review.amended), review.amended_total),
        f"<h2>Refused in this run: {_e(review.refused_total)}</h2>",
        f"<p>{_e(by_code)}</p>" if by_code else "",
        _table([("end-to-end id", False), ("amount (EUR)", True), ("debtor", False), ("mandate", False),
                ("code", False), ("reason", False)], refusals) if review.refused else "<p>None.</p>",
        _more(len(review.refused), review.refused_total),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def render_index(creditor_name: str, creditor_code: str, files: list[FileLine], total: int, folder: Path) -> str:
    """The creditor's files, newest first, each linked to its review page (relative links:
    held files' pages are in ``outbox/pending/<creditor>/``)."""
    rows = []
    for line in files:
        page = ""
        if line.path:
            review_page = Path(line.path).with_name(Path(line.path).stem + ".html")
            page = os.path.relpath(review_page, folder)
        name = f'<a href="{_e(page)}">{_e(line.file_name)}</a>' if page else _e(line.file_name)
        rows.append([
            name, _e(line.created_at.isoformat(timespec="seconds")), _e(STATUS_WORDS.get(line.status, line.status)),
            _e(line.count), _e(format_cents(line.sum_cents)), f"<code>{_e(line.message_id)}</code>",
        ])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(creditor_name)}: files</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(creditor_name)} ({_e(creditor_code)}): files</h1>",
        _table([("file", False), ("created", False), ("status", False), ("transactions", True), ("control sum (EUR)", True),
                ("message id", False)], rows) if rows else "<p>None.</p>",
        _more(len(files), total),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"
