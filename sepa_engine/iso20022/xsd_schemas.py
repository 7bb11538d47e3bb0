"""The one XSD loader: every schema the engine validates against is parsed here.

Two sources, neither copied into the repository (the ISO schemas are not ours to ship):

* the pain.008 XSDs inside the sepaxml package (``packaged``), read at run time;
* the ISO answer XSDs (pain.002, camt.05x) from a folder the caller or the configuration
  names (``from_folder``).

An XSD is outside input like any bank file: parsed with ``safe_xml``'s hardened options,
a DOCTYPE or entity declaration refused (an XSD has no use for one, and it is what entity
expansion needs), no network, and ``xs:include``/``xs:import`` only of local files, since
libxml2 fetches those itself. A schema is parsed once per process and path.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from pathlib import Path

from lxml import etree

from sepa_engine import errors
from sepa_engine.iso20022 import safe_xml

# XSDs are small (the largest ISO one we read is about 150 kB); a megabyte is not a schema.
MAX_XSD_BYTES = 4 * 1024 * 1024
_REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_XS = "{http://www.w3.org/2001/XMLSchema}"


def load(path: str | os.PathLike[str]) -> etree.XMLSchema:
    """The XSD at ``path``, parsed once per process.

    Raises ``ConfigurationError`` naming the file when it is missing, hostile or not a
    usable schema; failures are not cached, so a file fixed meanwhile is read again.
    """
    where = Path(path)
    if not where.is_file():
        raise errors.ConfigurationError("xsd", str(where), "does not exist")
    return _parsed(str(where.resolve()))


def from_folder(folder: str | os.PathLike[str], name: str) -> etree.XMLSchema:
    """``name`` (``camt.054.001.02.xsd``) from the folder the caller was configured with."""
    where = Path(folder)
    if not (where / name).is_file():
        raise errors.ConfigurationError("xsd_dir", str(where), f"has no {name}")
    return load(where / name)


def packaged(name: str) -> etree.XMLSchema:
    """A pain.008 XSD from the sepaxml package (``pain.008.001.08.xsd``)."""
    resource = resources.files("sepaxml").joinpath("schemas", name)
    if not resource.is_file():
        raise errors.ConfigurationError("xsd", name, "is not shipped by the sepaxml package")
    # sepaxml is installed as files; as_file would copy a zipped resource to a temporary file.
    with resources.as_file(resource) as found:
        return load(found)


@functools.lru_cache(maxsize=32)
def _parsed(path: str) -> etree.XMLSchema:
    try:
        source = safe_xml.check_source(path, MAX_XSD_BYTES)
        tree = etree.parse(str(source), etree.XMLParser(**safe_xml.parser_options()))
        safe_xml.refuse_declared_dtd(tree, source)
    except errors.UnreadableFile as exc:
        raise errors.ConfigurationError("xsd", path, f"is not a usable XSD: it {exc.rule}") from None
    except etree.XMLSyntaxError as exc:
        raise errors.ConfigurationError("xsd", path, f"is not a usable XSD: {safe_xml.one_line(str(exc))}") from None
    _refuse_remote_parts(tree, path)
    try:
        return etree.XMLSchema(tree)
    except etree.XMLSchemaParseError as exc:
        raise errors.ConfigurationError("xsd", path, f"is not a usable XSD: {safe_xml.one_line(str(exc))}") from None


def _refuse_remote_parts(tree: etree._ElementTree, path: str) -> None:
    # libxml2 loads included and imported schemas with its own loader, outside the
    # parser options above: a URL there would reach the network.
    for tag in ("include", "import", "redefine"):
        for element in tree.iter(_XS + tag):
            location = element.get("schemaLocation") or ""
            if _REMOTE.match(location):
                raise errors.ConfigurationError(
                    "xsd", path, f"is not a usable XSD: its xs:{tag} names {location!r}, and schemas are never fetched"
                )
