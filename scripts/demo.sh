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

echo; echo "== Files for the bank, checked by verify"
"$engine" batches list
"$engine" verify var/outbox/*/*.xml | grep -E "^(VALID|INVALID)"
latest=$(ls -t var/outbox/gim/*.summary.txt | head -n 1)
echo; echo "-- review summary beside the latest gim file: $latest"; cat "$latest"
