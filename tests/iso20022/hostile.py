"""Hostile XML for the readers' tests: one definition of each attack, wrapped around the
document of the message under test (which uses ``&lol9;`` or ``&xxe;`` where it is expanded)."""

from __future__ import annotations

# More than safe_xml's 64 KB prolog scan: the DOCTYPE then has to be caught after parsing.
LONG_COMMENT = "<!--" + "x" * 70_000 + "-->\n"

_LAUGHS = "\n".join(
    [' <!ENTITY lol "lol">']
    + [f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10)]
)


def billion_laughs(document: str) -> str:
    """``document`` behind nine levels of tenfold entities (10^9 "lol" if expanded)."""
    return f'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n{_LAUGHS}\n]>\n{document}\n'


def xxe(document: str) -> str:
    """``document`` behind an external entity that would read /etc/passwd."""
    return f'<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n{document}\n'


def after_prolog(text: str, insert: str) -> str:
    """``insert`` (a long comment) between the XML declaration and the rest."""
    head, rest = text.split("\n", 1)
    return f"{head}\n{insert}{rest}"
