"""The ``sepa-engine`` console script's entry point: a module that imports nothing.

The engine's helper processes (``helper_processes.py``) are forked from a forkserver, and
multiprocessing runs the parent's main script again in every such child before its work
starts. The console script's one top-level statement imports this module, so a child imports
nothing more; when it imported the whole CLI (typer, SQLAlchemy, every service), each child
spent 1.7 to 2.3 s of CPU on it before reading a byte (2-core Xeon, 2026-12-05), once per file
written or read.
"""

from __future__ import annotations


def main() -> None:
    from sepa_engine.cli.main import main as run

    run()
