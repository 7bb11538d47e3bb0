#!/usr/bin/env bash
# make demo: two months of collections on the embedded SQLite ledger under var/.
# Safe to run again: every load is idempotent and nothing is ever collected twice.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=.venv/bin/sepa-engine
# Business events go to stderr as JSON lines for machines; the demo shows the review only.
export SEPA_ENGINE_LOG_LEVEL="${SEPA_ENGINE_LOG_LEVEL:-warning}"

# collect exits 3 when there is nothing to do and 4 when some requests were refused:
# both are normal outcomes here, anything else stops the demo.
collect() {
  set +e
  "$engine" collect "$@"
  status=$?
  set -e
  if [ "$status" -ne 0 ] && [ "$status" -ne 3 ] && [ "$status" -ne 4 ]; then
    exit "$status"
  fi
}

echo "== ledger (var/sepa-engine.db)"
"$engine" init-db

echo; echo "== October: creditors, tenants and agencies, mandates, first debits"
"$engine" load fixtures/demo/october
collect --date 2026-10-22

echo; echo "== A tenant leaves: mandate RUM-GIM-0003 is revoked"
"$engine" mandates revoke RUM-GIM-0003 --creditor gim --reason "tenant left on 31 October"

echo; echo "== November: a bank change, a new tenant, requests to refuse"
"$engine" load fixtures/demo/november
collect --date 2026-11-23

echo; echo "== Refused requests"
"$engine" requests list --status refused

echo; echo "== The bank answers November's GIM file (simulated): rejects, a return, the credit"
november=$("$engine" batches list --creditor gim --limit 1 --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["path"])')
answers="var/inbox/$(basename "$november" .xml)"
if [ ! -e "$answers-pain002.xml" ]; then
  "$engine" simulate-bank "$november" --reject-rate 0.34 --return-rate 0.5 --seed 7 --out var/inbox
fi
# reconcile exits 1 when records went to the exceptions queue: shown, not fatal here.
"$engine" reconcile "$answers-pain002.xml" "$answers-camt054.xml" || true
echo "-- importing the same answers again changes nothing:"
"$engine" reconcile "$answers-pain002.xml" "$answers-camt054.xml" || true
"$engine" requests list --creditor gim
"$engine" mandates list --creditor gim

echo; echo "== Files for the bank, checked by verify"
"$engine" batches list
"$engine" verify var/outbox/*/*.xml | grep -E "^(VALID|INVALID)"
echo "-- PRESSIMMO's 2009 files against its bank's rules (profile fr, which still takes pain.008.001.02):"
"$engine" verify --profile fr var/outbox/pressimmo/*.xml | grep -E "^(VALID|INVALID)"
latest=$(ls -t var/outbox/gim/*.summary.txt | head -n 1)
echo; echo "-- review summary beside the latest gim file: $latest"; cat "$latest"

# --- December: the customer portals' flows (issue 5) -------------------------------------
at() { .venv/bin/python scripts/at.py "$@"; }

echo; echo "== December: a new agency at PRESSIMMO, a new tenant at GIM, and Syndic Lumiere, whose files wait for approval"
"$engine" load fixtures/demo/december

echo; echo "== PRESSIMMO invoices Agence Saint-Michel; the agency disputes one invoice"
at 2026-11-20T09:00:00+01:00 accounts invoices add AG-7003 --creditor pressimmo --number F26-1201 \
  --issue-date 2026-11-20 --due-date 2026-12-20 --amount 1200.00 --label "Annonces novembre" --key demo-inv-F26-1201
at 2026-11-20T09:00:00+01:00 accounts invoices add AG-7003 --creditor pressimmo --number F26-1202 \
  --issue-date 2026-11-20 --due-date 2026-12-20 --amount 300.00 --label "Pack vitrine" --key demo-inv-F26-1202
at 2026-11-20T09:00:00+01:00 accounts invoices add AG-7003 --creditor pressimmo --number F26-1203 \
  --issue-date 2026-11-20 --due-date 2026-12-20 --amount 250.00 --label "Photos pro" --key demo-inv-F26-1203
at 2026-11-24T11:00:00+01:00 accounts disputes open AG-7003 --creditor pressimmo --invoice F26-1202 \
  --reason "Annonce non parue en vitrine" --actor "agence:st-michel" --key demo-dispute-F26-1202

echo; echo "== PRESSIMMO's billing system sends a raw request for the disputed invoice: the account gate refuses it"
mkdir -p var
printf '%s\n' '{"idempotency_key": "demo-billing-F26-1202", "mandate": "PRESS-AG7003", "amount": "300.00", "invoices": ["F26-1202"]}' \
  > var/demo-billing-F26-1202.jsonl
set +e
at 2026-12-04T09:55:00+01:00 enqueue var/demo-billing-F26-1202.jsonl --creditor pressimmo
set -e

echo; echo "== The agency clicks 'pay': the disputed invoice is refused, the rest is collected from the next business day"
set +e
at 2026-12-04T10:00:00+01:00 accounts pay-now AG-7003 --creditor pressimmo --invoice F26-1202 --key demo-pay-disputed
set -e
at 2026-12-04T10:00:00+01:00 accounts pay-now AG-7003 --creditor pressimmo --invoice F26-1201 --invoice F26-1203 --key demo-pay-F26-1201-1203
at 2026-12-04T10:05:00+01:00 accounts statement AG-7003 --creditor pressimmo

echo; echo "== GIM: Hugo Lefevre switches to automatic monthly collection (new e-signed mandate)"
at 2026-11-18T14:32:00+01:00 accounts set-mode LOC-0006 --creditor gim --mode automatic --frequency monthly --day 8 \
  --mandate-reference RUM-GIM-0006-A --signed-at 2026-11-18T14:31:07+01:00 --iban FR7610107001010000012345670 \
  --signer "Hugo Lefevre" --evidence yousign-7f3e2a --actor "portal:hugo" --key demo-mode-LOC-0006
at 2026-11-20T09:00:00+01:00 accounts invoices add LOC-0006 --creditor gim --number Q-2026-12-006 \
  --issue-date 2026-11-20 --due-date 2026-12-08 --amount 980.00 --label "Loyer et charges decembre 2026" --key demo-inv-Q-2026-12-006
echo; echo "== The schedule creates December's debit and its pre-notification (at least 14 days ahead)"
at 2026-11-24T06:00:00+01:00 accounts schedule run --date 2026-11-24 --creditor gim
at 2026-11-24T06:05:00+01:00 accounts prenotifications export --creditor gim --json

echo; echo "== Sofia Rossi (GIM) changes bank: a new e-signed mandate, same reference"
at 2026-11-25T18:12:00+01:00 accounts change-bank LOC-0004 --creditor gim --mandate-reference RUM-GIM-0004 \
  --signed-at 2026-11-25T18:11:40+01:00 --iban DE02120300000000202051 --signer "Sofia Rossi" \
  --evidence yousign-91bc04 --actor "portal:sofia" --key demo-bank-LOC-0004

echo; echo "== December collection: the on-demand payment, the automatic debit, the amended mandate"
collect --date 2026-12-07
latest=$(ls -t var/outbox/gim/*.summary.txt | head -n 1)
echo; echo "-- review summary beside the latest gim file: $latest"; cat "$latest"

echo; echo "== Hausverwaltung Linden banks in Germany (profile de, pain.008.001.08, UltmtCdtr for the owners)"
"$engine" verify --profile de var/outbox/hv-linden/*.xml | grep -E "^(VALID|INVALID)"

echo; echo "== Syndic Lumiere requires approval: its file waits in var/outbox/pending until a person releases it"
"$engine" batches list --awaiting-approval
held=$("$engine" batches list --creditor syndic --limit 1 --json | .venv/bin/python -c 'import json,sys; rows=json.load(sys.stdin); print(rows[0]["id"] if rows and rows[0]["status"] == "awaiting_approval" else "")')
if [ -n "$held" ]; then
  # Approved on the morning of the run, under the demo clock: approval re-checks the date.
  at 2026-12-07T10:00:00+01:00 batch approve "$held" --by "ops:claire"
fi
"$engine" batches list --creditor syndic
echo; echo "== What is waiting now (sepa-engine status)"
"$engine" status
