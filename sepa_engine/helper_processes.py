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
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from sepa_engine.errors import CollectionError

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


def in_child() -> None:
    """First thing in every helper child: Ctrl-C is the parent's to act on.

    A terminal's Ctrl-C reaches the whole foreground process group, children included. The
    engine stops gracefully on it (the file or transaction in progress finishes), and it needs
    its children for that: a read-back child killed by the same Ctrl-C failed the file being
    written, an assessor child the assignment. A child ends when its parent closes the pipe, or
    dies with it. (SIGTERM is left as it is: multiprocessing ends a child with it; a systemd unit
    sends its stop signal to the main process only with ``KillMode=mixed``, README.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def spawn(target: Callable[..., None], *args: object, duplex: bool) -> tuple[Connection, BaseProcess]:
    """Start ``target(its end of the pipe, *args)`` in a helper child: this end of the pipe,
    and the child. Callers look at ``CONTEXT`` first: without a forkserver they do the work in
    process."""
    assert CONTEXT is not None, "a platform without a forkserver does this work in process"
    conn, child = CONTEXT.Pipe(duplex=duplex)
    process = CONTEXT.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    child.close()
    return conn, process


def stopped(helper: str, exc: BaseException, process: BaseProcess) -> CollectionError:
    """The error for a child that went away before answering: what the pipe said (an
    ``EOFError`` says nothing by itself) and how the child ended, which is what an operator
    needs to tell a crash from a kill (the OOM killer's SIGKILL, say)."""
    process.join(timeout=5)
    reason = str(exc) or type(exc).__name__
    code = process.exitcode
    if code is None:
        ended = "still running"
    elif code < 0:
        ended = f"killed by {signal.Signals(-code).name}"
    else:
        ended = f"exit code {code}"
    return CollectionError(helper, None, f"stopped before answering: {reason} (the child process: {ended})")
