"""Reading a bank answer for the reconciliation: in chunks, in this process or a child.

From ``READ_IN_CHILD_BYTES`` on, the file is read in a child process while the parent applies
what was read: parsing holds the GIL (lxml, then the reader's Python), so in one process the
two would take turns; in two they share the machine's cores. Below it, starting a process
costs more than it saves.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sepa_engine import errors, helper_processes
from sepa_engine.iso20022 import returns
from sepa_engine.iso20022.returns import ReturnRecord

READ_IN_CHILD_BYTES = 8 * 1024**2


@dataclass(frozen=True, slots=True)
class Summary:
    """What a reader knows once every record was read."""

    message_id: str | None
    skipped: int
    warnings: tuple[str, ...]
    created: str | None = None  # GrpHdr/CreDtTm, as the file gives it


class Reader:
    """``returns.read`` in this process, in chunks."""

    def __init__(self, source: Path, strict: bool, max_bytes: int | None, chunk_size: int) -> None:
        self._result = returns.read(source, strict=strict, max_bytes=max_bytes)
        self.message = self._result.message
        self._chunk_size = max(chunk_size, 1)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def chunks(self) -> Iterator[list[ReturnRecord]]:
        records = iter(self._result)
        while chunk := list(islice(records, self._chunk_size)):
            yield chunk

    def summary(self) -> Summary:
        return summary_of(self._result)


def summary_of(result: returns.ReadResult) -> Summary:
    warnings = [str(finding) for finding in result.warnings]
    if result.not_ours:
        warnings.append(result.not_ours)
    return Summary(result.message_id, result.skipped, tuple(warnings), result.created)


def read_in_child(conn: Connection, path: str, strict: bool, max_bytes: int | None, chunk_size: int) -> None:
    """The child's side: ("message", name), then ("records", [...]) per chunk, then
    ("summary", Summary); or ("error", errors.to_dict()) where reading stopped."""
    helper_processes.in_child()
    try:
        reader = Reader(Path(path), strict, max_bytes, chunk_size)
        conn.send(("message", reader.message))
        for chunk in reader.chunks():
            conn.send(("records", chunk))
        conn.send(("summary", reader.summary()))
    except errors.SepaEngineError as exc:
        conn.send(("error", exc.to_dict()))
    except (BrokenPipeError, EOFError):
        pass  # the parent stopped listening (it failed, or was interrupted): nothing to tell
    except Exception as exc:  # noqa: BLE001 - a bug must reach the parent, not die here
        conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


# A pipe this large holds a whole pickled chunk (about 575 KB for 2,000 camt records).
PIPE_BYTES = 1024**2


def _widen(conn: Connection) -> None:
    """Let the pipe hold a whole chunk (Linux; elsewhere the pipe keeps its size).

    With the default 64 KB, the child wrote a chunk in nine parts, each waiting until this
    process had read the one before: this process then waited for the child to be
    scheduled nine times per chunk, and the child could not start reading the next chunk
    before this one was read whole. The pipe's memory is bounded (one chunk), so memory
    stays flat."""
    try:
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size for an unprivileged user: the default size works


class ChildReader:
    """``Reader`` in a child process (forked from a forkserver, safe in the threaded daemon).

    The pipe holds about one chunk: the child reads the next chunk while this process
    applies the current one, and never runs further ahead, so memory stays flat. Errors
    cross as ``to_dict`` and are raised here as the same class.
    """

    def __init__(self, source: Path, strict: bool, max_bytes: int | None, chunk_size: int) -> None:
        self._source = source
        self._conn, self._process = helper_processes.spawn(
            read_in_child, str(source), strict, max_bytes, chunk_size, duplex=False
        )
        _widen(self._conn)  # the pipe's size, set from either end
        self._summary: Summary | None = None
        try:
            self.message: str = self._expect("message")
        except BaseException:
            self._stop()
            raise

    def __enter__(self) -> ChildReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def chunks(self) -> Iterator[list[ReturnRecord]]:
        while True:
            kind, payload = self._receive()
            if kind == "records":
                yield payload
            elif kind == "summary":
                self._summary = payload
                return
            else:
                raise self._failure(kind, payload)

    def summary(self) -> Summary:
        assert self._summary is not None, "read every chunk first"
        return self._summary

    def _expect(self, wanted: str) -> Any:
        kind, payload = self._receive()
        if kind != wanted:
            raise self._failure(kind, payload)
        return payload

    def _receive(self) -> tuple[str, Any]:
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except EOFError:
            return "crash", f"the reader process ended without an answer (exit code {self._process.exitcode})"

    def _failure(self, kind: str, payload: Any) -> errors.SepaEngineError:
        if kind == "error":
            return errors.from_dict(payload)
        return errors.SepaEngineError("file", str(self._source), f"could not be read: {payload}")

    def _stop(self) -> None:
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()  # blocked on a pipe nobody reads any more
            self._process.join()
