"""The one XSD loader: packaged pain.008 schemas, answer schemas from a configured folder,
hostile or missing files refused with the file named."""

from __future__ import annotations

import shutil

import pytest
from lxml import etree

from sepa_engine import errors
from sepa_engine.banksim import load_schemas
from sepa_engine.iso20022 import return_support, versions, xsd_schemas
from tests.shared_files import xsd_dir

_MINIMAL_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:test" xmlns="urn:test"
  elementFormDefault="qualified">
  <xs:element name="Doc" type="xs:string"/>
</xs:schema>
"""


def test_a_packaged_pain008_schema_is_parsed_once_per_process():
    first = xsd_schemas.packaged(versions.PAIN_008_001_08.xsd_name)
    assert xsd_schemas.packaged(versions.PAIN_008_001_08.xsd_name) is first
    assert versions.load_schema(versions.PAIN_008_001_08.xsd_name) is first


def test_a_schema_the_package_does_not_ship_is_refused_by_name():
    with pytest.raises(errors.ConfigurationError) as caught:
        xsd_schemas.packaged("pain.008.009.99.xsd")
    assert caught.value.value == "pain.008.009.99.xsd"
    assert "sepaxml" in caught.value.rule


def test_a_missing_file_is_refused_naming_the_file(tmp_path):
    with pytest.raises(errors.ConfigurationError) as caught:
        xsd_schemas.load(tmp_path / "camt.054.001.02.xsd")
    assert caught.value.value == str(tmp_path / "camt.054.001.02.xsd")
    assert caught.value.rule == "does not exist"


def test_a_folder_without_the_schema_names_the_folder_and_the_file(tmp_path):
    with pytest.raises(errors.ConfigurationError) as caught:
        xsd_schemas.from_folder(tmp_path, "pain.002.001.03.xsd")
    assert caught.value.field == "xsd_dir"
    assert caught.value.value == str(tmp_path)
    assert "pain.002.001.03.xsd" in caught.value.rule


def test_a_schema_from_a_folder_validates_and_is_cached(tmp_path):
    (tmp_path / "test.xsd").write_bytes(_MINIMAL_XSD)
    schema = xsd_schemas.from_folder(tmp_path, "test.xsd")
    assert schema.validate(etree.fromstring(b'<Doc xmlns="urn:test">x</Doc>'))
    assert not schema.validate(etree.fromstring(b'<Other xmlns="urn:test"/>'))
    assert xsd_schemas.load(tmp_path / "test.xsd") is schema


def test_an_xsd_declaring_an_entity_is_refused(tmp_path):
    hostile = tmp_path / "hostile.xsd"
    hostile.write_bytes(
        b'<?xml version="1.0"?>\n<!DOCTYPE xs:schema [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
        + _MINIMAL_XSD.split(b"?>\n", 1)[1].replace(b'type="xs:string"/>', b'type="xs:string"/><!-- &secret; -->')
    )
    with pytest.raises(errors.ConfigurationError) as caught:
        xsd_schemas.load(hostile)
    assert caught.value.value == str(hostile.resolve())
    assert "DOCTYPE or entities" in caught.value.rule


def test_an_xsd_importing_a_remote_schema_is_refused_before_any_fetch(tmp_path):
    remote = tmp_path / "remote.xsd"
    remote.write_bytes(
        _MINIMAL_XSD.replace(
            b'<xs:element name="Doc"',
            b'<xs:import namespace="urn:other" schemaLocation="http://198.51.100.7/other.xsd"/>\n  <xs:element name="Doc"',
        )
    )
    with pytest.raises(errors.ConfigurationError) as caught:
        xsd_schemas.load(remote)
    assert "never fetched" in caught.value.rule


def test_a_file_that_is_not_a_schema_is_refused_naming_it(tmp_path):
    (tmp_path / "broken.xsd").write_bytes(b"<xs:schema")
    with pytest.raises(errors.ConfigurationError) as caught:
        xsd_schemas.load(tmp_path / "broken.xsd")
    assert caught.value.value == str((tmp_path / "broken.xsd").resolve())
    assert caught.value.rule.startswith("is not a usable XSD")


def test_the_return_readers_and_the_bank_simulator_share_the_loaded_answer_schemas(tmp_path):
    for name in ("pain.002.001.03.xsd", "camt.054.001.02.xsd"):
        shutil.copy(xsd_dir() / name, tmp_path / name)
    simulator = load_schemas(tmp_path)
    message = return_support.MESSAGES["urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"]
    schema, why_not = return_support.locate_schema(message, tmp_path)
    assert why_not == ""
    assert schema is simulator.pain002


def test_the_return_readers_warn_rather_than_fail_on_a_hostile_xsd(tmp_path):
    (tmp_path / "camt.054.001.02.xsd").write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "b">]>\n<x/>')
    message = return_support.MESSAGES["urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"]
    schema, why_not = return_support.locate_schema(message, tmp_path)
    assert schema is None
    assert "cannot be loaded" in why_not and "DOCTYPE" in why_not
