"""What the fuzz tests share: how long they run, and the one assertion they all make.

``make test`` runs every fuzz test with a few dozen examples (seconds); ``make fuzz`` sets
``SEPA_ENGINE_FUZZ_EXAMPLES`` for a long run. A crasher found by either is kept as a file
under ``tests/testdata/crashers/<entry point>/`` (as moov-io/ach keeps its fuzz crashers)
and replayed by ``test_crashers.py`` for ever after.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

from sepa_engine import errors

EXAMPLES = int(os.environ.get("SEPA_ENGINE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def refuses_cleanly(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or None when it refused with an engine error (a "field value
    problem" with a code); anything else (RecursionError, UnicodeEncodeError, a driver
    error...) is a crasher and fails the test."""
    try:
        return call()
    except errors.SepaEngineError as exc:
        assert exc.code and str(exc), exc
        str(exc).encode("utf-8")  # the line the CLI prints must be printable
        return None
