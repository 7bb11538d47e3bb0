"""Keep the garbage collector off the objects a long run never frees.

A collection run or a reconciliation allocates millions of short-lived containers (rows,
dicts of values, rendered fragments). CPython's cyclic collector promotes the survivors of
each chunk to its oldest generation, and every collection of that generation then walks the
whole heap: the modules, SQLAlchemy's mappers, schwifty's registry, the parsed XSDs, none of
which the run will ever free. ``gc.freeze()`` (Python 3.7+, "gc" in the standard library
documentation) moves every object alive at that moment to a permanent generation that no
collection walks; ``gc.unfreeze()`` gives them back to the oldest generation. In a
100,000-request collection run the collector's time went from 2.5-3.3 s to 1.5-1.9 s
(BENCHMARKS.md, 2026-12-05). Nothing is lost: what was alive before the run outlives it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Freeze what is alive now for the duration of the block.

    A process that froze its heap itself (the API server does at start-up) keeps it frozen:
    only a freeze this block made is undone, so a daemon's runs do not pile their leftovers
    into the permanent generation run after run.
    """
    already_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not already_frozen:
            gc.unfreeze()
