"""Run one sepa-engine command as if it were another moment (demo only).

    python scripts/at.py 2026-12-04T10:00:00+01:00 accounts pay-now ...

The demo replays fixed months; commands that read the clock (a click on "pay now", the
schedule) must see the demo's dates, not today's. freezegun (a test dependency, installed
by make) freezes the clock for this one process; the engine itself has no time override.
"""

from __future__ import annotations

import sys

from freezegun import freeze_time

from sepa_engine.cli.main import main

if __name__ == "__main__":
    moment, args = sys.argv[1], sys.argv[2:]
    sys.argv = ["sepa-engine", *args]
    with freeze_time(moment):
        main()
