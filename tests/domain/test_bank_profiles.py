"""Bank profiles are data with a source for every rule (issue 14, item 8 and "bank profiles")."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sepa_engine import errors
from sepa_engine.domain import calendar
from sepa_engine.domain.bank_profiles import PROFILES, AddressForm, address_form, profile
from sepa_engine.iso20022.versions import VERSIONS

PARIS = ZoneInfo("Europe/Paris")
RULES = ("versions", "address_form", "closing_days", "cutoff", "lead_days", "bic_required", "file_limits")


def test_at_least_five_communities_are_known():
    assert {"epc", "de", "fr", "nl"} <= set(PROFILES) and len(PROFILES) >= 5


@pytest.mark.parametrize("code", sorted(PROFILES))
def test_every_rule_of_every_profile_names_its_source(code):
    bank = PROFILES[code]
    for rule in RULES:
        assert bank.sources.get(rule, "").strip(), f"{code}: rule {rule} has no source"
    if bank.accepted_until:
        assert bank.sources.get("accepted_until", "").strip()
    assert bank.default_version in VERSIONS and all(v in VERSIONS for v in bank.versions)
    assert set(bank.accepted_until) <= set(bank.versions)


@pytest.mark.parametrize("code", sorted(PROFILES))
def test_no_default_cutoff_is_later_than_the_banks_published_ones(code):
    # The old default, 16:00 with one day, was later than ABN AMRO (12:30 on D-1) and
    # Deutsche Bank NL (13:00 on D-1): a file sent at 15:00 missed the date it claimed.
    assert PROFILES[code].cutoff <= dt.time(12, 30) and PROFILES[code].lead_days >= 1


def test_german_banks_refuse_001_02_after_14_november_2026():
    de = profile("de")
    assert de.check_version("pain.008.001.02", dt.date(2026, 11, 14)) == "pain.008.001.02"
    with pytest.raises(errors.ConfigurationError) as caught:
        de.check_version("pain.008.001.02", dt.date(2026, 11, 15))
    assert "no longer accepted by bank profile de since 2026-11-15" in str(caught.value)
    assert "pain.008.001.08" in str(caught.value)
    assert profile("nl").accepts("pain.008.001.02", dt.date(2026, 12, 4))


def test_an_unknown_profile_is_refused_by_name():
    with pytest.raises(errors.ConfigurationError) as caught:
        profile("xx")
    assert caught.value.field == "bank_profile" and "known: de, epc" in str(caught.value)


def test_address_form_of_001_02_is_lines_until_lines_are_forbidden_then_none():
    assert address_form("pain.008.001.02", dt.date(2026, 11, 13)) is AddressForm.EPC_LINES
    assert address_form("pain.008.001.02", dt.date(2026, 11, 14)) is AddressForm.NONE
    assert address_form("pain.008.001.08", dt.date(2026, 11, 14)) is AddressForm.STRUCTURED


def test_german_banks_do_not_collect_on_24_and_31_december_although_target_is_open():
    de = profile("de").closing_days
    assert calendar.is_target_day(dt.date(2026, 12, 24)) and calendar.is_target_day(dt.date(2026, 12, 31))
    now = dt.datetime(2026, 12, 22, 9, 0, tzinfo=PARIS)
    assert calendar.collection_date(dt.date(2026, 12, 24), now, 1, dt.time(12, 30), closed_also=de) == dt.date(2026, 12, 28)
    assert calendar.collection_date(dt.date(2026, 12, 24), now, 1, dt.time(12, 30)) == dt.date(2026, 12, 24)
    # A file sent on the 24th counts as sent on the 28th: the 29th is the earliest date.
    on_24th = dt.datetime(2026, 12, 24, 9, 0, tzinfo=PARIS)
    assert calendar.earliest_collection_date(on_24th, 1, dt.time(12, 30), closed_also=de) == dt.date(2026, 12, 29)
    assert calendar.collection_date(dt.date(2026, 12, 31), now, 1, dt.time(12, 30), closed_also=de) == dt.date(2027, 1, 4)
