"""Structured logs: one event per business fact, on stderr, JSON unless on a terminal.

Anything that identifies a debtor is masked by a processor before rendering, whatever
the call site passed: the fields that carry IBANs, names and mandate references are
declared by key and masked; identifiers (message and batch ids, file names) are declared
too and never touched, so a log line can always be matched to its file; in other free
text, only a token that is an IBAN by its country's rules is masked, and the values
PostgreSQL quotes in an error's detail (a failing row, a key) are hidden. A statement's
parameters never reach an error's text (``hide_parameters``, db/session.py).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from sepa_engine.domain.masking import mask_iban, mask_ibans_in_text, mask_name, mask_reference

# The fields that carry personal data, by key (a declared set, not a guess from the value).
_IBAN_KEYS = {"iban", "debtor_iban", "creditor_iban", "original_iban"}
_NAME_KEYS = {"name", "debtor_name", "debtor", "signer_name", "contact_name", "email"}
_REFERENCE_KEYS = {"mandate", "mandate_reference", "mandate_id", "reference", "account_reference"}
# Identifiers an operator matches log lines to files by: never rewritten, whatever their
# shape (a message id can pass the IBAN checksum: about one in 97 did, and was masked).
_IDENTIFIER_KEYS = {"event", "level", "timestamp", "message_id", "file", "path", "job", "step", "creditor", "status",
                    "outcome", "kind", "reason_code", "trigger", "slot", "missed_since", "timezone", "period", "mode"}


# PostgreSQL's error details quote the values of a row or a key ("Failing row contains (1, 7,
# CUST-9, Jeanne Dupont, ...)", "Key (creditor_id, reference)=(1, RUM-7) already exists"):
# any of them can be a name, which free-text masking cannot recognise. The columns stay: they
# say what failed. Formats of PostgreSQL 15: execMain.c (a failing row), nbtinsert.c (a
# duplicate key), ri_triggers.c (a foreign key), execIndexing.c (an exclusion conflict).
_FAILING_ROW = re.compile(r"(Failing row contains )\(.*\)")
_KEY_VALUES = re.compile(r"(Key \([^)]*\))=\(.*\)(?= already exists| is not present| is still referenced| conflicts)")


def _hide_row_values(text: str) -> str:
    if "Failing row" not in text and "Key (" not in text:
        return text
    return _KEY_VALUES.sub(r"\1=(values hidden)", _FAILING_ROW.sub(r"\1(values hidden)", text))


def masked_text(text: str) -> str:
    """Free text as a log line shows it (an error's message kept beside the logs, say)."""
    return mask_ibans_in_text(_hide_row_values(text))


def mask_event(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if value is None:
            continue
        if key in _IBAN_KEYS:
            event[key] = mask_iban(str(value))
        elif key in _NAME_KEYS:
            event[key] = mask_name(str(value))
        elif key in _REFERENCE_KEYS:
            event[key] = mask_reference(str(value))
        elif key in _IDENTIFIER_KEYS or key.endswith("_id") or not isinstance(value, str):
            continue
        else:
            # Free text (an error's message, a note) may quote an IBAN: masked there only
            # when it is one by its country's rules (domain/masking.mask_ibans_in_text).
            event[key] = masked_text(value)
    return event


def configure(json_lines: bool | None = None, level: int | None = None) -> None:
    """``SEPA_ENGINE_LOG_LEVEL`` (debug, info, warning, error) sets the level; info by default."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    if level is None:
        level = logging.getLevelName(os.environ.get("SEPA_ENGINE_LOG_LEVEL", "info").upper())
        if not isinstance(level, int):
            level = logging.INFO
    # Tracebacks as plain text under "exception", before masking: JSON lines otherwise dropped
    # them ("exc_info": true), and the console's default (rich) listed every frame's locals,
    # IBANs and names in clear. The plain format shows no locals; its IBANs are masked as in
    # any free text.
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
