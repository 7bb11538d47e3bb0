"""Benchmark workloads, each run in its own process so peak RSS belongs to it alone.

    python -m bench.workloads <name> <count> <workdir> [<ledger>]

prints one JSON line: {"name", "count", "seconds", "peak_rss_mb", "host_loop_ms"}. ``ledger`` is
the number of debits already in the ledger, for the workloads that read one (reconcile-sqlite;
reconcile-shuffled-sqlite lists the same returns in a random order, as a bank would).
``host_loop_ms`` is how fast the host ran Python meanwhile, set-up included (``bench/host.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.host import Sampler
from sepa_engine import logs
from sepa_engine.domain.directdebit import (
    BlockKey,
    Creditor,
    DirectDebit,
    FileHeader,
    LocalInstrument,
    PaymentBlock,
    PostalAddress,
    SequenceType,
)

CREDITOR = Creditor("Gestion Immobiliere Martin", "FR7630006000011234567890189", "FR72ZZZ123456", "AGRIFRPP")
DEBTOR_IBANS = ("DE89370400440532013000", "NL91ABNA0417164300", "BE68539007547034", "ES9121000418450200051332")
ADDRESS = PostalAddress(country="FR", town="Lyon", postcode="69001", street="Rue de la Republique", building_number="5")
# The same address in sepaxml's vocabulary, so both writers emit the same elements.
SEPAXML_ADDRESS = {"street_name": ADDRESS.street, "building_number": ADDRESS.building_number,
                   "postcode": ADDRESS.postcode, "town": ADDRESS.town, "country": ADDRESS.country}
SIGNED = dt.date(2025, 1, 15)
CREATED = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
BLOCK_SIZE = 50_000


def _collection_date(block_number: int) -> dt.date:
    # One TARGET day per block: verify (rightly) flags weekends and closing days.
    from sepa_engine.domain.calendar import add_target_days

    return add_target_days(dt.date(2026, 11, 25), block_number + 1)


def entries(count: int) -> Iterator[tuple[PaymentBlock, DirectDebit]]:
    """Recurring debits spread over blocks of 50,000, made on the fly (never a list)."""
    block = None
    for n in range(count):
        if n % BLOCK_SIZE == 0:
            key = BlockKey(CREDITOR.creditor_id, CREDITOR.iban, _collection_date(n // BLOCK_SIZE),
                           SequenceType.RECURRING, LocalInstrument.CORE)
            block = PaymentBlock(f"BENCH-{n // BLOCK_SIZE:04d}", key, CREDITOR)
        yield block, DirectDebit(
            end_to_end_id=f"E2E-{n:010d}",
            amount_cents=1_000 + n % 100_000,
            mandate_id=f"RUM-{n:010d}",
            mandate_signed_on=SIGNED,
            debtor_name=f"Debiteur numero {n}",
            debtor_iban=DEBTOR_IBANS[n % 4],
            debtor_address=ADDRESS,
            remittance=f"Loyer et charges novembre 2026 lot {n}",
        )


def plan(count: int) -> list:
    """Per-block counts and sums, as the collection run gets them from one SQL aggregate."""
    from sepa_engine.iso20022.pain008 import BlockPlan

    blocks: dict[str, list] = {}
    for block, tx in _headers_and_amounts(count):
        entry = blocks.setdefault(block.payment_info_id, [block, 0, 0])
        entry[1] += 1
        entry[2] += tx
    return [BlockPlan(b, c, s) for b, c, s in blocks.values()]


def _headers_and_amounts(count: int) -> Iterator[tuple[PaymentBlock, int]]:
    block = None
    for n in range(count):
        if n % BLOCK_SIZE == 0:
            key = BlockKey(CREDITOR.creditor_id, CREDITOR.iban, _collection_date(n // BLOCK_SIZE),
                           SequenceType.RECURRING, LocalInstrument.CORE)
            block = PaymentBlock(f"BENCH-{n // BLOCK_SIZE:04d}", key, CREDITOR)
        yield block, 1_000 + n % 100_000


def ours_planned(count: int, workdir: Path) -> None:
    from sepa_engine.iso20022.pain008 import write_pain008
    from sepa_engine.iso20022.versions import PAIN_008_001_08, load_schema

    load_schema(PAIN_008_001_08.xsd_name)
    header = FileHeader("BENCH", CREATED, CREDITOR.name, CREDITOR.creditor_id)
    with (workdir / f"ours-planned-{count}.xml").open("wb") as out:
        write_pain008(out, PAIN_008_001_08, header, entries(count), plan=plan(count), spool_dir=workdir)


def ours_planned_profile(count: int, workdir: Path) -> None:
    """Planned, checked against the epc bank profile too, as the collection run writes."""
    from sepa_engine.domain.bank_profiles import profile
    from sepa_engine.iso20022.pain008 import write_pain008
    from sepa_engine.iso20022.versions import PAIN_008_001_08, load_schema

    load_schema(PAIN_008_001_08.xsd_name)
    header = FileHeader("BENCH", CREATED, CREDITOR.name, CREDITOR.creditor_id)
    with (workdir / f"ours-planned-profile-{count}.xml").open("wb") as out:
        write_pain008(out, PAIN_008_001_08, header, entries(count), plan=plan(count), spool_dir=workdir,
                      profile=profile("epc"))


def ours(count: int, workdir: Path) -> None:
    from sepa_engine.iso20022.pain008 import write_pain008
    from sepa_engine.iso20022.versions import PAIN_008_001_08, load_schema

    load_schema(PAIN_008_001_08.xsd_name)  # schema parsing is a one-off, not per file
    header = FileHeader("BENCH", CREATED, CREDITOR.name, CREDITOR.creditor_id)
    with (workdir / f"ours-{count}.xml").open("wb") as out:
        write_pain008(out, PAIN_008_001_08, header, entries(count), spool_dir=workdir)


def sepaxml_export(count: int, workdir: Path) -> None:
    from sepaxml import SepaDD

    config = {"name": CREDITOR.name, "IBAN": CREDITOR.iban, "BIC": CREDITOR.bic, "batch": True,
              "creditor_id": CREDITOR.creditor_id, "currency": "EUR", "instrument": "CORE"}
    sepa = SepaDD(config, schema="pain.008.001.08", clean=True)
    for block, tx in entries(count):
        sepa.add_payment({
            "name": tx.debtor_name, "IBAN": tx.debtor_iban, "amount": tx.amount_cents,
            "type": block.key.sequence_type.value, "collection_date": block.key.collection_date,
            "mandate_id": tx.mandate_id, "mandate_date": tx.mandate_signed_on,
            "description": tx.remittance, "endtoend_id": tx.end_to_end_id,
            "address": SEPAXML_ADDRESS,
        })
    (workdir / f"sepaxml-{count}.xml").write_bytes(sepa.export(validate=False))


def verify(count: int, workdir: Path) -> None:
    from sepa_engine.iso20022.pain008_verify import verify as run_verify

    report = run_verify(workdir / f"ours-{count}.xml")
    errors_found = [f for f in report.findings if f.severity == "error"]
    if errors_found:
        raise SystemExit(f"verify found errors in our own file: {errors_found[:3]}")


def simulate_counting(count: int, workdir: Path) -> float:
    """The simulator's exact counts for a file of ``count`` transactions (2 % rejected, 1 % of
    the rest returned): the pre-pass over the draws, the cuts, then one decision a transaction."""
    from sepa_engine.banksim.decisions import Bank, Outcome, Rates, exact_count

    started = time.perf_counter()
    bank = Bank(Rates(0.02, 0.01), 7, "BENCH", count)
    outcomes = [0, 0]
    for _ in range(count):
        decided = bank.decide().outcome
        if decided is not Outcome.SETTLED:
            outcomes[decided is Outcome.RETURNED] += 1
    seconds = time.perf_counter() - started
    rejected = exact_count(0.02, count)
    assert outcomes == [rejected, exact_count(0.01, count - rejected)], outcomes  # exact, not drawn
    return seconds


def simulate_answers(count: int, workdir: Path) -> float:
    """Both answers (pain.002 and camt.054, XSD-validated) to a planned file of ``count``
    debits, as ``simulate-bank`` writes them; writing the pain.008 is set-up, not timed."""
    from sepa_engine.banksim import simulate
    from sepa_engine.banksim.streams import load_schemas

    ours_planned(count, workdir)
    # The shared reference XSDs, as `simulate-bank --xsd-dir ../shared/iso20022/xsd` reads them.
    schemas = load_schemas(Path(__file__).resolve().parents[1].parent / "shared" / "iso20022" / "xsd")
    out = workdir / f"answers-{count}"
    for old in out.glob("*.xml") if out.exists() else ():
        old.unlink()
    started = time.perf_counter()
    simulate(workdir / f"ours-planned-{count}.xml", out, 0.02, 0.01, seed=7, schemas=schemas, keep_details=False)
    return time.perf_counter() - started


def collect_sqlite(count: int, workdir: Path) -> float:
    from bench.ledger import collect

    return collect("sqlite", count, workdir)


def collect_postgresql(count: int, workdir: Path) -> float:
    from bench.ledger import collect

    return collect("postgresql", count, workdir)


def enqueue_sqlite(count: int, workdir: Path) -> float:
    from bench.ledger import enqueue

    return enqueue("sqlite", count, workdir)


def enqueue_postgresql(count: int, workdir: Path) -> float:
    from bench.ledger import enqueue

    return enqueue("postgresql", count, workdir)


def enqueue_established_sqlite(count: int, workdir: Path) -> float:
    from bench.ledger import enqueue

    return enqueue("sqlite", count, workdir, established=True)


def enqueue_established_postgresql(count: int, workdir: Path) -> float:
    from bench.ledger import enqueue

    return enqueue("postgresql", count, workdir, established=True)


def schedule_established_sqlite(count: int, workdir: Path) -> float:
    from bench.ledger import schedule

    return schedule("sqlite", count, workdir, established=True)


def schedule_established_postgresql(count: int, workdir: Path) -> float:
    from bench.ledger import schedule

    return schedule("postgresql", count, workdir, established=True)


def schedule_sqlite(count: int, workdir: Path) -> float:
    from bench.ledger import schedule

    return schedule("sqlite", count, workdir)


def schedule_postgresql(count: int, workdir: Path) -> float:
    from bench.ledger import schedule

    return schedule("postgresql", count, workdir)


def reconcile_sqlite(count: int, workdir: Path, ledger: int = 1_000_000) -> dict[str, float | None]:
    from bench.returns import reconcile

    return reconcile(count, workdir, ledger)


def reconcile_postgresql(count: int, workdir: Path, ledger: int = 1_000_000) -> dict[str, float | None]:
    from bench.returns import reconcile

    return reconcile(count, workdir, ledger, backend="postgresql")


def reconcile_shuffled_sqlite(count: int, workdir: Path, ledger: int = 1_000_000) -> dict[str, float | None]:
    from bench.returns import reconcile

    return reconcile(count, workdir, ledger, shuffled=True)


def reconcile_shuffled_postgresql(count: int, workdir: Path, ledger: int = 1_000_000) -> dict[str, float | None]:
    from bench.returns import reconcile

    return reconcile(count, workdir, ledger, backend="postgresql", shuffled=True)


def collect_parallel_postgresql(count: int, workdir: Path, processes: int = 2) -> float:
    from bench.parallel import collect

    return collect(count, workdir, processes)


WORKLOADS = {
    "enqueue-sqlite": enqueue_sqlite, "enqueue-postgresql": enqueue_postgresql,
    "schedule-sqlite": schedule_sqlite, "schedule-postgresql": schedule_postgresql,
    "enqueue-established-sqlite": enqueue_established_sqlite, "enqueue-established-postgresql": enqueue_established_postgresql,
    "schedule-established-sqlite": schedule_established_sqlite,
    "schedule-established-postgresql": schedule_established_postgresql,
    "ours": ours, "ours-planned": ours_planned, "ours-planned-profile": ours_planned_profile, "sepaxml": sepaxml_export, "verify": verify,
    "collect-sqlite": collect_sqlite, "collect-postgresql": collect_postgresql,
    "reconcile-sqlite": reconcile_sqlite, "reconcile-postgresql": reconcile_postgresql,
    "reconcile-shuffled-sqlite": reconcile_shuffled_sqlite, "reconcile-shuffled-postgresql": reconcile_shuffled_postgresql,
    "collect-parallel-postgresql": collect_parallel_postgresql,
    "simulate-counting": simulate_counting, "simulate-answers": simulate_answers,
}


def main() -> None:
    name, count, workdir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    extra = [int(arg) for arg in sys.argv[4:]]
    workdir.mkdir(parents=True, exist_ok=True)
    # Logs as a cron job's engine writes them (the CLI's set-up: info and up), not structlog's
    # unconfigured default, which prints every debug line.
    logs.configure()
    sampler = Sampler()
    started = time.perf_counter()
    # A workload may time itself (to leave its set-up out) by returning its seconds.
    try:
        measured = WORKLOADS[name](count, workdir, *extra)
    finally:
        host_loop_ms = sampler.stop()
    # A workload may also report more figures, with its seconds, as a dict.
    more = dict(measured) if isinstance(measured, dict) else {}
    if "seconds" in more:
        measured = more.pop("seconds")
    seconds = measured if isinstance(measured, float) else time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The planned writer's read-back child is forked by the forkserver, not by this process,
    # so RUSAGE_CHILDREN cannot see it: BENCHMARKS.md gives its peak, sampled with ps.
    print(json.dumps({
        "name": name, "count": count, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
        "host_loop_ms": host_loop_ms, **more,
    }))


if __name__ == "__main__":
    main()
