from __future__ import annotations

import stat

import pytest

from sepa_engine import errors, outbox


def test_staged_file_is_owner_only_and_hidden_until_published(tmp_path):
    final = tmp_path / "out" / "file.xml"
    tmp, result = outbox.stage(final, lambda fh: fh.write(b"<x/>"))
    assert result == 4
    assert not final.exists()
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
    assert stat.S_IMODE(final.parent.stat().st_mode) == 0o700
    outbox.publish(tmp, final)
    assert final.read_bytes() == b"<x/>"
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert not tmp.exists()


def test_failed_write_leaves_no_temporary_file(tmp_path):
    final = tmp_path / "file.xml"

    def explode(fh):
        fh.write(b"half")
        raise errors.SchemaViolation("Nm", None, "breaks the XSD")

    with pytest.raises(errors.SchemaViolation):
        outbox.stage(final, explode)
    assert list(tmp_path.iterdir()) == []


def test_publishing_never_overwrites_an_existing_file(tmp_path):
    final = tmp_path / "file.xml"
    final.write_bytes(b"already at the bank")
    tmp, _ = outbox.stage(final, lambda fh: fh.write(b"new"))
    with pytest.raises(errors.CollectionError, match="never overwritten"):
        outbox.publish(tmp, final)
    assert final.read_bytes() == b"already at the bank"


def test_leftovers_of_a_crashed_run_are_found(tmp_path):
    final = tmp_path / "c1" / "file.xml"
    tmp, _ = outbox.stage(final, lambda fh: fh.write(b"x"))
    assert list(outbox.leftovers(tmp_path)) == [tmp]
