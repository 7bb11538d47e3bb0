"""A bank inside the project: answers our pain.008 files with a pain.002 and a camt.054.

Used by the tests of the return readers and reconciliation, and by ``make demo`` to close
the loop (collect, let the bank answer, reconcile). Seeded and deterministic: the same
file, rates and seed give the same bytes.

Public API: ``simulate`` (and ``answer_paths``), its ``SimulationResult`` with
``Rejection``/``Return`` details and the ``GroupStatus``, ``load_schemas`` to validate the
answers against the official XSDs while they are written, and the reason-code tables the
bank draws from (``REJECT_CODES``, ``RETURN_CODES``).
"""

from __future__ import annotations

from sepa_engine.banksim.decisions import (
    REJECT_CODES,
    RETURN_CODES,
    RETURN_DAYS,
    RETURN_FEES_CENTS,
    Rates,
)
from sepa_engine.banksim.simulator import (
    DEFAULT_OUT_DIR,
    GroupStatus,
    Rejection,
    Return,
    SimulationResult,
    answer_paths,
    simulate,
)
from sepa_engine.banksim.streams import (
    CAMT054_XSD,
    PAIN002_XSD,
    AnswerSchemas,
    load_schemas,
)

__all__ = [
    "CAMT054_XSD",
    "DEFAULT_OUT_DIR",
    "PAIN002_XSD",
    "REJECT_CODES",
    "RETURN_CODES",
    "RETURN_DAYS",
    "RETURN_FEES_CENTS",
    "AnswerSchemas",
    "GroupStatus",
    "Rates",
    "Rejection",
    "Return",
    "SimulationResult",
    "answer_paths",
    "load_schemas",
    "simulate",
]
