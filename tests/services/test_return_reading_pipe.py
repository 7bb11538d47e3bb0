"""The reader's pipe holds a whole chunk, so the child never waits for the applying process
to read part of a chunk before writing the rest (and can read the next chunk meanwhile)."""

from __future__ import annotations

import fcntl
import pickle
import sys
from pathlib import Path

import pytest

from bench.returns import write_returns
from sepa_engine.iso20022 import returns
from sepa_engine.services import return_reading
from sepa_engine.services.reconciliation import CHUNK


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_GETPIPE_SZ is Linux's")
def test_a_whole_chunk_of_camt_records_fits_in_the_readers_pipe(tmp_path: Path):
    # Regression: at the default 64 KB the bench's 2,000-record chunks (575 KB pickled)
    # crossed in nine writes, each waiting for the applying process to read the one before.
    path = tmp_path / "returns.xml"
    write_returns(path, CHUNK, CHUNK * 10)
    chunk = list(returns.read(path))
    assert len(chunk) == CHUNK
    with return_reading.ChildReader(path, False, None, CHUNK) as reader:
        size = fcntl.fcntl(reader._conn.fileno(), fcntl.F_GETPIPE_SZ)
        (received,) = list(reader.chunks())
    assert received == chunk
    assert len(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)) < size
