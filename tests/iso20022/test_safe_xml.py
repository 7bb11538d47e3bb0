from __future__ import annotations

from pathlib import Path

import pytest

from sepa_engine import errors
from sepa_engine.iso20022 import safe_xml
from sepa_engine.iso20022.versions import load_schema

ROOT = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"><a>x</a></Document>'
BOMB = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'


def _write(tmp_path, data: bytes):
    path = tmp_path / "f.xml"
    path.write_bytes(data)
    return path


def test_doctype_after_a_long_comment_is_still_refused(tmp_path):
    long_comment = b"<!--" + b"x" * 200_000 + b"-->"
    path = _write(tmp_path, b'<?xml version="1.0"?>' + long_comment + BOMB + ROOT)
    with pytest.raises(errors.UnreadableFile, match="DOCTYPE"):
        safe_xml.check_source(path)


def test_doctype_in_a_utf16_file_is_refused(tmp_path):
    text = '<?xml version="1.0" encoding="UTF-16"?>' + BOMB.decode() + ROOT.decode()
    path = _write(tmp_path, b"\xff\xfe" + text.encode("utf-16-le"))
    with pytest.raises(errors.UnreadableFile, match="DOCTYPE"):
        safe_xml.check_source(path)


def test_comments_and_processing_instructions_before_the_root_are_fine(tmp_path):
    path = _write(tmp_path, b'<?xml version="1.0"?><!-- bank file --><?note x?>\n' + ROOT)
    assert safe_xml.root_namespace(path) == "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"


def test_a_prolog_of_megabytes_is_refused(tmp_path):
    path = _write(tmp_path, b"<!--" + b"x" * (5 * 1024 * 1024) + b"-->" + ROOT)
    with pytest.raises(errors.UnreadableFile, match="prolog longer"):
        safe_xml.check_source(path)


def test_a_doctype_in_memory_is_refused_without_expanding_it():
    with pytest.raises(errors.UnreadableFile, match="DOCTYPE"):
        safe_xml.parse_bytes(BOMB + b"<a>&lol2;</a>")


def test_tag_filter_yields_only_the_named_elements(tmp_path):
    path = _write(tmp_path, ROOT)
    tags = [e.tag for _, e in safe_xml.iterparse(path, tag="{urn:iso:std:iso:20022:tech:xsd:pain.008.001.08}a")]
    assert tags == ["{urn:iso:std:iso:20022:tech:xsd:pain.008.001.08}a"]


def _broken_pain008(tmp_path):
    golden = Path(__file__).parents[1] / "testdata" / "pain.008" / "pain.008.001.08-two-blocks-amendments.xml"
    text = golden.read_text().replace("<PmtMtd>DD</PmtMtd>", "<PmtMtd>XX</PmtMtd>", 1)
    return _write(tmp_path, text.encode())


def test_streamed_violations_are_collected_when_asked_and_raised_otherwise(tmp_path):
    path = _broken_pain008(tmp_path)
    schema = load_schema("pain.008.001.08.xsd")
    messages: list[str] = []
    ends = list(safe_xml.iterparse(path, schema=schema, schema_messages=messages))
    assert ends  # every element was yielded before the violations were reported
    assert len(messages) == 1 and "PmtMtd" in messages[0] and "{urn:" not in messages[0]
    with pytest.raises(errors.SchemaViolation, match="PmtMtd"):
        list(safe_xml.iterparse(path, schema=schema))


def test_tree_validation_gives_the_streamed_violation_with_its_line(tmp_path):
    path = _broken_pain008(tmp_path)
    schema = load_schema("pain.008.001.08.xsd")
    messages: list[str] = []
    list(safe_xml.iterparse(path, schema=schema, schema_messages=messages))
    _tree, entries = safe_xml.validate_tree(path, schema)
    assert [safe_xml.schema_text(entry.message) for entry in entries] == messages
    assert entries[0].line is not None and entries[0].line > 1


def test_tree_validation_refuses_what_the_stream_refuses(tmp_path):
    path = _write(tmp_path, ROOT[:-5])
    with pytest.raises(errors.UnreadableFile, match=r"is not well-formed XML: .*line 1"):
        safe_xml.validate_tree(path, load_schema("pain.008.001.08.xsd"))
    with pytest.raises(errors.UnreadableFile, match="is not well-formed XML"):
        list(safe_xml.iterparse(path))
