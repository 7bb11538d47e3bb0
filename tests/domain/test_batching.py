from __future__ import annotations

import datetime as dt

import pytest

from sepa_engine import errors
from sepa_engine.domain.batching import plan_files
from sepa_engine.domain.directdebit import SequenceType
from sepa_engine.ids import SequentialIds
from tests.factories import CREDITOR, OTHER_CREDITOR, collectible

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


def _plan(items, max_per_file=1000):
    files = []
    for planned in plan_files(items, max_per_file=max_per_file, ids=SequentialIds(), created_at=NOW):
        files.append((planned.header, list(planned.entries)))
    return files


def test_debits_sharing_a_key_share_one_payment_block():
    files = _plan([collectible(1), collectible(2), collectible(3)])
    assert len(files) == 1
    blocks = {block.payment_info_id for block, _ in files[0][1]}
    assert blocks == {"MSG000001-0001"}


def test_sequence_type_and_collection_date_open_new_blocks():
    items = sorted(
        [
            collectible(1, sequence_type=SequenceType.FIRST),
            collectible(2, sequence_type=SequenceType.RECURRING),
            collectible(3, collection_date=dt.date(2026, 11, 27)),
        ],
        key=lambda c: c.key,
    )
    (_, entries), = _plan(items)
    keys = [block.key for block, _ in entries]
    assert len({block.payment_info_id for block, _ in entries}) == 3
    assert keys == sorted(keys)


def test_each_creditor_gets_its_own_file():
    items = sorted([collectible(1, CREDITOR), collectible(2, OTHER_CREDITOR)], key=lambda c: c.key)
    files = _plan(items)
    assert [h.initiating_party_id for h, _ in files] == sorted([CREDITOR.creditor_id, OTHER_CREDITOR.creditor_id])
    assert files[0][0].message_id != files[1][0].message_id


def test_files_split_at_the_creditors_maximum_transactions():
    files = _plan([collectible(n) for n in range(7)], max_per_file=3)
    assert [len(entries) for _, entries in files] == [3, 3, 1]
    all_ids = [d.end_to_end_id for _, entries in files for _, d in entries]
    assert len(all_ids) == len(set(all_ids)) == 7


def test_identical_debits_never_merge_into_one_transaction():
    twin = collectible(1)
    (_, entries), = _plan([twin, twin])
    assert len(entries) == 2


def test_payment_information_ids_are_unique_and_within_35_characters():
    items = sorted(
        [collectible(n, collection_date=dt.date(2026, 11, 26) + dt.timedelta(days=n)) for n in range(50)],
        key=lambda c: c.key,
    )
    files = _plan(items, max_per_file=20)
    ids = {block.payment_info_id for _, entries in files for block, _ in entries}
    assert len(ids) == 50
    assert all(len(i) <= 35 for i in ids)


def test_unsorted_input_is_refused_rather_than_split_into_scattered_blocks():
    items = [collectible(1, collection_date=dt.date(2026, 11, 27)), collectible(2, collection_date=dt.date(2026, 11, 26))]
    with pytest.raises(errors.CollectionError, match="sorted by block key"):
        _plan(items)


def test_a_file_left_half_read_does_not_lose_the_rest():
    planned = plan_files([collectible(n) for n in range(5)], max_per_file=2, ids=SequentialIds(), created_at=NOW)
    first = next(planned)
    next(first.entries)  # read one of two, then move on
    rest = [len(list(p.entries)) for p in planned]
    assert rest == [2, 1]


def test_zero_maximum_is_a_configuration_error():
    with pytest.raises(errors.ConfigurationError, match="max_transactions_per_file"):
        _plan([collectible(1)], max_per_file=0)
