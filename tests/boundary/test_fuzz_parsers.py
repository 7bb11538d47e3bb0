"""Fuzzing the readers of outside input (no database): whatever the bytes, the answer is a
document or an engine error naming the problem, never another exception."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import given

from sepa_engine import config, json_input
from sepa_engine.api import bodies
from sepa_engine.iso20022 import pain008_verify, returns
from sepa_engine.services import file_enqueue
from tests.boundary.fuzzing import FUZZ, refuses_cleanly

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
SAMPLES = sorted(p for p in TESTDATA.glob("*/*.xml"))

# Text that reaches the corners: JSON punctuation, escapes of surrogates and NUL, bidi and
# zero-width characters, deep brackets, huge numbers.
_PIECES = st.sampled_from([
    "{", "}", "[", "]", ",", ":", '"', "\\", "\\u0000", "\\ud800", "\\udfff", "\u202e", "\u200b", "\x00",
    "NaN", "Infinity", "-", "1e999999", "0" * 400, "true", "null", '"amount"', '"mandate"', "\n", "\r", "\t", "=",
    "[" * 200, "{\"a\":" * 100,
])
HOSTILE_TEXT = st.one_of(st.text(), st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=60).map("".join))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(raw=st.one_of(HOSTILE_TEXT, st.binary()))
def test_the_json_reader_answers_a_document_or_an_invalid_format(raw: str | bytes) -> None:
    document = refuses_cleanly(lambda: json_input.loads(raw, "line"))
    if document is not None:
        refuses_cleanly(lambda: json_input.check_text(document))


@FUZZ
@given(raw=HOSTILE_TEXT, fmt=st.sampled_from(file_enqueue.FORMATS))
def test_enqueue_lines_and_rows_are_read_or_refused_by_line(raw: str, fmt: str) -> None:
    refuses_cleanly(lambda: file_enqueue.read_lines(raw, fmt))


@FUZZ
@given(name=st.sampled_from(bodies.names()), document=JSON_VALUES, raw=HOSTILE_TEXT)
def test_every_http_body_is_parsed_or_refused_with_its_fields(name: str, document: object, raw: str) -> None:
    refuses_cleanly(lambda: bodies.parse(json.dumps(document).encode(), name))
    refuses_cleanly(lambda: bodies.parse(raw.encode("utf-8", "surrogatepass"), name))


_TOML_PIECES = st.sampled_from([
    "[database]\n", "[paths]\n", "[engine]\n", "[scheduler]\n", "[api]\n", "[scheduler.jobs.nightly]\n", "[x]\n",
    'url = "', "mysql://", "postgresql://", "sqlite:///", '"\n', "chunk_size = ", "lock_wait_seconds = ",
    "timezone = ", "outbox_dir = ", "cron = ", "enabled = ", "port = ", "nan\n", "inf\n", "-1\n", "7\n",
    '"big"\n', "true\n", "1e400\n", '"Europe/Paris"\n', '"* * * * *"\n', "\xff", "=", "\n",
])


@FUZZ
@given(pieces=st.lists(st.one_of(_TOML_PIECES, st.text(max_size=4)), max_size=25), junk=st.binary(max_size=30))
def test_any_configuration_file_is_read_or_refused_naming_the_key(tmp_path_factory, pieces: list[str], junk: bytes) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("config") / "sepa-engine.toml"
    path.write_bytes("".join(pieces).encode("utf-8", "surrogatepass") + junk)
    refuses_cleanly(lambda: config.load_settings(path))


def _mutated(data: st.DataObject) -> bytes:
    sample = data.draw(st.sampled_from(SAMPLES), label="sample").read_bytes()
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        at = data.draw(st.integers(0, len(sample)), label="at")
        kind = data.draw(st.sampled_from(["cut", "insert", "delete", "replace"]), label="kind")
        piece = data.draw(st.sampled_from([b"<", b">", b"&", b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
                                           b"&e;", b"\x00", b"\xff\xfe", b"9" * 40, b"-1", b"</Document>", b"<Amt>"])
                          | st.binary(max_size=8), label="piece")
        if kind == "cut":
            sample = sample[:at]
        elif kind == "insert":
            sample = sample[:at] + piece + sample[at:]
        elif kind == "delete":
            sample = sample[:at] + sample[at + len(piece):]
        else:
            sample = sample[:at] + piece + sample[at + len(piece):]
    return sample


@FUZZ
@given(data=st.data())
def test_mutated_bank_files_are_read_or_refused_as_unreadable(tmp_path_factory, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("returns") / "answer.xml"
    path.write_bytes(_mutated(data))
    refuses_cleanly(lambda: returns.read(path))


@FUZZ
@given(data=st.data())
def test_verify_reports_or_refuses_any_mutated_pain008(tmp_path_factory, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("verify") / "file.xml"
    path.write_bytes(_mutated(data))
    refuses_cleanly(lambda: pain008_verify.verify(path))
