"""The one loader of the project's published JSON Schemas (``schemas/``).

The schema generator (``services/input_schemas``), the account documents and the response
documents of the OpenAPI description read their schemas through here: one place knows where
an installation keeps them and reads each folder once. ``validator`` builds validators that
resolve ``$ref`` between files of a folder without any network access; inputs are checked by
their pydantic models, so only the tests use it (jsonschema is a test dependency), to prove
the generated schemas accept what the models accept.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sepa_engine import errors

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SUFFIX = ".schema.json"

# Installed wheels carry the schemas inside the package; a checkout has them at the top.
_DIRECTORIES = (
    Path(__file__).resolve().parent / "schemas",
    Path(__file__).resolve().parents[1] / "schemas",
)


def directory(subdir: str = "") -> Path:
    """Where the schemas are (``subdir``: ``accounts``, ``responses``, or the top)."""
    for candidate in _DIRECTORIES:
        if (candidate / "creditor.schema.json").is_file():
            return candidate / subdir if subdir else candidate
    raise errors.ConfigurationError(
        "schemas", str(_DIRECTORIES[-1]), "holds no JSON Schemas: the installation is incomplete"
    )


@functools.cache
def _folder(subdir: str) -> Mapping[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text("utf-8")) for path in sorted(directory(subdir).glob("*" + SUFFIX))}


def names(subdir: str = "") -> list[str]:
    """The schema files of a folder, sorted."""
    return list(_folder(subdir))


def schema(name: str, subdir: str = "") -> dict[str, Any]:
    """The schema in file ``name`` of a folder, as published (a copy: callers may edit it).

    ``name`` may carry its folder (``accounts/pay-now.schema.json``)."""
    folder, _, file_name = name.rpartition("/")
    found = _folder(subdir or folder).get(file_name)
    if found is None:
        where = f"schemas/{subdir or folder}/{file_name}".replace("//", "/")
        raise errors.ConfigurationError("schema", where, "is not installed: the installation is incomplete")
    return copy.deepcopy(found)


@functools.cache
def validator(name: str, subdir: str = "") -> Draft202012Validator:
    """A validator of schema ``name``, with formats checked.

    Every schema of the folder is registered under its ``$id``, so ``"$ref":
    "address.schema.json"`` resolves against the referring schema's ``$id`` offline."""
    from jsonschema import Draft202012Validator  # a test dependency: see the module's docstring
    from referencing import Registry, Resource

    schemas = _folder(subdir)
    if name not in schemas:
        raise errors.ConfigurationError("schema", name, "is not installed: the installation is incomplete")
    resources = Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in schemas.values()
    )
    return Draft202012Validator(schemas[name], registry=resources, format_checker=Draft202012Validator.FORMAT_CHECKER)
