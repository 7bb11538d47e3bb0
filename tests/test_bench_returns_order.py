"""The reconciliation bench's file of returns (bench/returns.py): in the ledger's order, the
most favourable to the indexes, or in a fixed random order, as a bank lists returns."""

from __future__ import annotations

from pathlib import Path

from bench.returns import write_returns


def _entries(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("<Ntry>")]


def test_a_shuffled_file_lists_the_same_returns_in_another_order_fixed_by_its_size(tmp_path: Path) -> None:
    ordered, shuffled, again = tmp_path / "ordered.xml", tmp_path / "shuffled.xml", tmp_path / "again.xml"
    write_returns(ordered, 200, 2_000)
    write_returns(shuffled, 200, 2_000, shuffled=True)
    write_returns(again, 200, 2_000, shuffled=True)

    assert sorted(_entries(shuffled)) == sorted(_entries(ordered)) and len(_entries(ordered)) == 200
    assert _entries(shuffled) != _entries(ordered)
    assert _entries(again) == _entries(shuffled)  # the same file every run: runs compare
    # Everything around the entries is the same document.
    assert shuffled.read_text().split("<Ntry>")[0] == ordered.read_text().split("<Ntry>")[0]
