"""Every difference between the pain.008 versions we write, in one table.

The writer and the readers look a version up here and never test version names themselves.
XSDs are loaded from the sepaxml package, which ships the official ISO schemas; we do not
keep copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from sepa_engine import errors
from sepa_engine.iso20022 import xsd_schemas

ISO_NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"


class SmndaPlacement(StrEnum):
    """Where "Same Mandate, New Debtor Agent" goes when the debtor changed bank.

    The 2013 German variant (pain.008.003.02) carries it as the original debtor agent; since
    the November 2016 rulebook the agent may be absent (BIC optional) and the EPC and DK
    guidelines put it in the original debtor account instead, for 001.02 files too.
    """

    DEBTOR_AGENT = "OrgnlDbtrAgt"
    DEBTOR_ACCOUNT = "OrgnlDbtrAcct"


@dataclass(frozen=True, slots=True)
class Pain008Version:
    name: str
    bic_tag: str
    smnda: SmndaPlacement
    # Whether the debtor's postal address must be structured (TwnNm + Ctry at least).
    structured_address: bool
    # The file name of the XSD inside the sepaxml package, None when no schema ships.
    xsd_name: str | None
    writable: bool

    @property
    def namespace(self) -> str:
        return ISO_NAMESPACE_PREFIX + self.name


PAIN_008_001_02 = Pain008Version(
    name="pain.008.001.02",
    bic_tag="BIC",
    smnda=SmndaPlacement.DEBTOR_ACCOUNT,
    structured_address=False,
    xsd_name="pain.008.001.02.xsd",
    writable=True,
)
PAIN_008_001_08 = Pain008Version(
    name="pain.008.001.08",
    bic_tag="BICFI",
    smnda=SmndaPlacement.DEBTOR_ACCOUNT,
    structured_address=True,
    xsd_name="pain.008.001.08.xsd",
    writable=True,
)
# Read (verify, describe) but never written: later ISO versions and the German/EPC
# variants of 2009 that reuse the ISO element names.
_READ_ONLY = (
    Pain008Version("pain.008.001.09", "BICFI", SmndaPlacement.DEBTOR_ACCOUNT, True, "pain.008.001.09.xsd", False),
    Pain008Version("pain.008.001.10", "BICFI", SmndaPlacement.DEBTOR_ACCOUNT, True, "pain.008.001.10.xsd", False),
    Pain008Version("pain.008.003.02", "BIC", SmndaPlacement.DEBTOR_AGENT, False, None, False),
    Pain008Version("pain.008.002.02", "BIC", SmndaPlacement.DEBTOR_AGENT, False, None, False),
)

DEFAULT_VERSION = PAIN_008_001_08
VERSIONS: dict[str, Pain008Version] = {
    v.name: v for v in (PAIN_008_001_02, PAIN_008_001_08, *_READ_ONLY)
}
_BY_NAMESPACE = {v.namespace: v for v in VERSIONS.values()}


def version(name: str) -> Pain008Version:
    try:
        return VERSIONS[name]
    except KeyError:
        raise errors.ConfigurationError(
            "pain008_version", name, f"is not a known pain.008 version (known: {', '.join(sorted(VERSIONS))})"
        ) from None


def writable_version(name: str) -> Pain008Version:
    found = version(name)
    if not found.writable:
        writable = ", ".join(sorted(n for n, v in VERSIONS.items() if v.writable))
        raise errors.ConfigurationError("pain008_version", name, f"is read-only here (we write {writable})")
    return found


def version_for_namespace(namespace: str | None) -> Pain008Version:
    try:
        return _BY_NAMESPACE[namespace or ""]
    except KeyError:
        raise errors.UnknownMessage("namespace", namespace or "(none)", "is not a supported pain.008 version") from None


def load_schema(xsd_name: str) -> etree.XMLSchema:
    """The official XSD shipped inside sepaxml, through the one loader (parsed once per process)."""
    return xsd_schemas.packaged(xsd_name)
