"""The cyclic garbage collector during a long run (a collection run, a reconciliation).

Such a run allocates millions of containers (rows, dicts of values, records, rendered
fragments) that live until their chunk is written. At CPython's default first threshold
(700) the collector runs thousands of times per run and promotes what it finds alive, until
collections of the oldest generation walk the whole heap: the modules, SQLAlchemy's mappers,
schwifty's registry, the parsed XSDs, none of which the run will ever free. Two remedies,
each measured on the run it was first made for (BENCHMARKS.md, 2026-12-05):

* ``gc.freeze()`` moves every object alive at the start to a permanent generation that no
  collection walks (``gc.unfreeze()`` gives them back). Collection run, 100,000 requests on
  SQLite: the collector's time 2.5-3.3 s -> 1.5-1.9 s.
* The first threshold raised to ``YOUNG_THRESHOLD`` (10,000): 100,000 returns into 1,000,000
  debits on SQLite, the applying process's CPU 21 s -> 16.5 s, peak RSS unchanged (125 MB).
  50,000 saved no more and took 173 MB. Nearly everything is freed by reference counting;
  cyclic garbage still triggers a collection once 10,000 containers of it pile up.

Nothing is lost: what was alive before the run outlives it, and the process gets its own
settings back when the last long run in any thread ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None
_froze = False


@contextmanager
def long_run() -> Iterator[None]:
    """Ease the collector for the block (see the module docstring).

    A higher first threshold of the process is kept. A process that froze its heap itself
    (the API server does at start-up) is not frozen again: a daemon's runs must not pile
    their leftovers into the permanent generation run after run. Overlapping blocks in
    several threads share one setting, undone when the last one ends.
    """
    global _depth, _saved, _froze
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(_saved[0], YOUNG_THRESHOLD), *_saved[1:])
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _saved is not None:
                    gc.set_threshold(*_saved)
                    _saved = None
                if _froze:
                    gc.unfreeze()
                    _froze = False
