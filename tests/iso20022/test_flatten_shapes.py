"""``ShapeCache.flatten`` leaving out a streaming part reads what ``flatten`` reads.

The camt reader reads an entry's own fields while its details are still streaming, through
the shape cache, which never walks the details (``flatten`` walked them and dropped them,
the reader's costliest call). Held equal here on every entry of every camt sample in
../shared, with and without the details."""

from __future__ import annotations

import pytest

from sepa_engine.iso20022 import safe_xml
from sepa_engine.iso20022.return_support import ShapeCache, flatten
from tests.shared_files import samples_dir


def _same(expected, got) -> None:
    # The cache keys a repeated path's later occurrences "\0<index>" (kept in ``extra``).
    assert {key for key in got.first if not key.startswith("\0")} == set(expected.first)
    for key in expected.first:
        if key.endswith("/"):
            assert got.has(key), key  # a container: only its presence is read
        else:
            assert got.get(key) == expected.get(key), key
            assert got.all(key) == expected.all(key), key


@pytest.mark.parametrize("message", ["camt.052", "camt.053", "camt.054"])
def test_an_entrys_own_fields_read_through_the_shape_cache_are_flattens(message):
    entries = 0
    for path in sorted(samples_dir(message).glob("*.xml")):
        for _event, element in safe_xml.iterparse(path, ("end",)):
            if not isinstance(element.tag, str) or not element.tag.endswith("}Ntry"):
                continue
            cut = element.tag.index("}") + 1
            shapes = ShapeCache(cut)
            for skip in (frozenset({"NtryDtls"}), frozenset()):
                _same(flatten(element, cut, skip), shapes.flatten(element, skip))
                # Twice: the second read goes through the plan the first one made.
                _same(flatten(element, cut, skip), shapes.flatten(element, skip))
            entries += 1
    assert entries
