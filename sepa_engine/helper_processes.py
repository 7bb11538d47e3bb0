"""The forkserver the engine's helper processes are forked from.

The run's assessors (``services/assessing.py``), each written file's read-back
(``iso20022/readback.py``), the return files' reader (``services/return_reading.py``) and
verify's streaming XSD check (``iso20022/pain008_xsd.py``) run in child processes forked from
one forkserver: safe in a threaded daemon, unlike a plain fork, and no interpreter start-up per
child. The forkserver imports ``PRELOAD`` once, when the first child starts, so a child starts
with what it works with already imported. multiprocessing also runs the parent's main module
again in every child before its work (``__mp_main__``): a program that starts the engine keeps
its main module's top level light, as the console script does (``cli/entry.py``).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import ForkServerContext

# By name: imported in the forkserver, not in every process that imports this module. The
# process that starts the first child waits for these imports, so only the read-back is
# preloaded: the assessor's (the TARGET calendar's holidays among them) would make every
# first file's read-back wait 0.3 s more; the run's two assessors import them once each.
PRELOAD = ["sepa_engine.iso20022.readback"]


def _forkserver() -> ForkServerContext | None:
    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:  # a platform without one (Windows): callers do the work in process
        return None
    context.set_forkserver_preload(PRELOAD)
    return context


# None where the platform has no forkserver.
CONTEXT = _forkserver()
