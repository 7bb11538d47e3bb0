"""The one loader of schemas/: folders, copies, offline $ref resolution, clear failures."""

from __future__ import annotations

import pytest

from sepa_engine import errors, json_schemas


def test_every_folder_is_found_where_the_checkout_keeps_it():
    assert (json_schemas.directory() / "creditor.schema.json").is_file()
    assert "pay-now.schema.json" in json_schemas.names("accounts")
    assert "money.schema.json" in json_schemas.names("responses")


def test_a_schema_named_with_its_folder_is_the_one_of_that_folder():
    assert json_schemas.schema("accounts/pay-now.schema.json") == json_schemas.schema("pay-now.schema.json", "accounts")


def test_a_schema_is_handed_out_as_a_copy():
    first = json_schemas.schema("creditor.schema.json")
    first["properties"].clear()
    assert json_schemas.schema("creditor.schema.json")["properties"]


def test_references_between_files_resolve_without_the_network():
    validator = json_schemas.validator("debtor-account.schema.json")
    problems = list(validator.iter_errors({"address": {"country": 12}}))
    # The address rules come from address.schema.json, reached through "$ref".
    assert any("address" in "/".join(map(str, error.absolute_path)) for error in problems)


def test_a_missing_schema_is_an_incomplete_installation():
    with pytest.raises(errors.ConfigurationError, match="installation is incomplete"):
        json_schemas.schema("no-such.schema.json")
    with pytest.raises(errors.ConfigurationError, match="installation is incomplete"):
        json_schemas.validator("no-such.schema.json", "accounts")
