from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from sepa_engine import errors
from sepa_engine.domain.directdebit import Amendment, SequenceType
from sepa_engine.domain.mandate import (
    LAPSE_MONTHS,
    FirstCollectionPolicy,
    Mandate,
    MandateKind,
    MandateSnapshot,
    MandateStatus,
    add_months,
    amendment_between,
    check_collectable,
    lapse_date,
    sequence_type,
    transition,
)

REFERENCE = "MNDT-2024-000123"


def mandate(**overrides: object) -> Mandate:
    values: dict[str, object] = {
        "reference": REFERENCE,
        "kind": MandateKind.RECURRENT,
        "status": MandateStatus.ACTIVE,
        "signed_on": dt.date(2024, 1, 10),
        "first_collected_on": None,
        "last_collected_on": None,
        "final_collected": False,
    }
    values.update(overrides)
    return Mandate(**values)  # type: ignore[arg-type]


# --- sequence types -------------------------------------------------------------------------
@pytest.mark.parametrize("policy", list(FirstCollectionPolicy))
@pytest.mark.parametrize("final", [False, True])
def test_one_off_mandate_is_always_ooff(policy, final):
    assert sequence_type(mandate(kind=MandateKind.ONE_OFF), policy, final=final) is SequenceType.ONE_OFF


def test_first_collection_is_frst_under_frst_policy():
    assert sequence_type(mandate(), FirstCollectionPolicy.FRST) is SequenceType.FIRST


def test_first_collection_is_rcur_under_rcur_policy():
    assert sequence_type(mandate(), FirstCollectionPolicy.RCUR) is SequenceType.RECURRING


@pytest.mark.parametrize("policy", list(FirstCollectionPolicy))
def test_collection_after_a_successful_first_is_rcur(policy):
    collected = mandate(first_collected_on=dt.date(2024, 2, 5), last_collected_on=dt.date(2024, 3, 5))
    assert sequence_type(collected, policy) is SequenceType.RECURRING


def test_first_collection_rejected_leaves_the_next_attempt_frst():
    # The first collection was presented (last_collected_on) but rejected: it does not count.
    rejected_first = mandate(first_collected_on=None, last_collected_on=dt.date(2024, 2, 5))
    assert sequence_type(rejected_first, FirstCollectionPolicy.FRST) is SequenceType.FIRST


def test_first_collection_rejected_stays_rcur_under_rcur_policy():
    rejected_first = mandate(first_collected_on=None, last_collected_on=dt.date(2024, 2, 5))
    assert sequence_type(rejected_first, FirstCollectionPolicy.RCUR) is SequenceType.RECURRING


@pytest.mark.parametrize("policy", list(FirstCollectionPolicy))
@pytest.mark.parametrize("first_collected_on", [None, dt.date(2024, 2, 5)])
def test_collection_marked_final_is_fnal(policy, first_collected_on):
    recurrent = mandate(first_collected_on=first_collected_on)
    assert sequence_type(recurrent, policy, final=True) is SequenceType.FINAL


def test_policy_given_as_plain_string_is_accepted():
    assert sequence_type(mandate(), "frst") is SequenceType.FIRST  # type: ignore[arg-type]


# --- lapse ----------------------------------------------------------------------------------
def test_lapse_is_counted_from_the_last_collection():
    collected = mandate(first_collected_on=dt.date(2023, 5, 10), last_collected_on=dt.date(2023, 5, 10))
    assert LAPSE_MONTHS == 36
    assert lapse_date(collected) == dt.date(2026, 5, 10)


def test_lapse_is_counted_from_the_signature_when_never_collected():
    assert lapse_date(mandate(signed_on=dt.date(2023, 5, 10))) == dt.date(2026, 5, 10)


def test_lapse_from_29_february_falls_on_28_february():
    assert lapse_date(mandate(signed_on=dt.date(2024, 2, 29))) == dt.date(2027, 2, 28)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (dt.date(2024, 1, 31), 1, dt.date(2024, 2, 29)),
        (dt.date(2023, 1, 31), 1, dt.date(2023, 2, 28)),
        (dt.date(2024, 11, 30), 3, dt.date(2025, 2, 28)),
        (dt.date(2024, 12, 15), 36, dt.date(2027, 12, 15)),
        (dt.date(2024, 3, 31), -1, dt.date(2024, 2, 29)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(start, months, expected):
    assert add_months(start, months) == expected


def test_collection_36_months_minus_one_day_after_last_is_allowed():
    collected = mandate(first_collected_on=dt.date(2023, 5, 10), last_collected_on=dt.date(2023, 5, 10))
    check_collectable(collected, dt.date(2026, 5, 9))


def test_collection_exactly_36_months_after_last_has_lapsed():
    collected = mandate(first_collected_on=dt.date(2023, 5, 10), last_collected_on=dt.date(2023, 5, 10))
    with pytest.raises(errors.MandateLapsed) as caught:
        check_collectable(collected, dt.date(2026, 5, 10))
    assert caught.value.reason_code == "MD01"
    assert caught.value.field == "mandate"
    assert caught.value.value == REFERENCE


def test_never_collected_mandate_lapses_36_months_after_signature():
    unused = mandate(signed_on=dt.date(2023, 5, 10))
    check_collectable(unused, dt.date(2026, 5, 9))
    with pytest.raises(errors.MandateLapsed):
        check_collectable(unused, dt.date(2026, 5, 10))


# --- collectability -------------------------------------------------------------------------
def test_active_signed_mandate_is_collectable():
    check_collectable(mandate(), dt.date(2024, 2, 5))


def test_mandate_signed_on_the_collection_date_is_collectable():
    check_collectable(mandate(signed_on=dt.date(2024, 2, 5)), dt.date(2024, 2, 5))


def test_mandate_signed_after_the_collection_date_is_refused():
    with pytest.raises(errors.MandateNotYetSigned) as caught:
        check_collectable(mandate(signed_on=dt.date(2024, 2, 6)), dt.date(2024, 2, 5))
    assert caught.value.reason_code == "MD02"
    assert caught.value.value == REFERENCE


@pytest.mark.parametrize("status", [s for s in MandateStatus if s not in (MandateStatus.ACTIVE, MandateStatus.HELD)])
def test_mandate_that_is_not_active_is_refused_with_its_status(status):
    with pytest.raises(errors.MandateNotActive) as caught:
        check_collectable(mandate(status=status), dt.date(2024, 2, 5))
    assert status.value in caught.value.rule
    assert caught.value.reason_code == "MD01"
    assert caught.value.field == "mandate"
    assert caught.value.value == REFERENCE


def test_error_prints_field_value_problem_with_the_reference_masked():
    with pytest.raises(errors.MandateError) as caught:
        check_collectable(mandate(status=MandateStatus.BLOCKED), dt.date(2024, 2, 5))
    message = str(caught.value)
    assert message.startswith("mandate '")
    assert REFERENCE not in message
    assert message.endswith("[MD01]")


def test_one_off_mandate_already_collected_is_refused():
    used = mandate(kind=MandateKind.ONE_OFF, first_collected_on=dt.date(2024, 2, 5), last_collected_on=dt.date(2024, 2, 5))
    with pytest.raises(errors.MandateAlreadyUsed) as caught:
        check_collectable(used, dt.date(2024, 3, 5))
    assert caught.value.reason_code == "MD01"


def test_one_off_mandate_whose_collection_was_rejected_may_be_collected_again():
    rejected = mandate(kind=MandateKind.ONE_OFF, first_collected_on=None, last_collected_on=dt.date(2024, 2, 5))
    check_collectable(rejected, dt.date(2024, 3, 5))


def test_mandate_after_its_final_collection_is_refused():
    finished = mandate(first_collected_on=dt.date(2024, 2, 5), last_collected_on=dt.date(2024, 6, 5), final_collected=True)
    with pytest.raises(errors.MandateAlreadyUsed) as caught:
        check_collectable(finished, dt.date(2024, 7, 5))
    assert "FNAL" in caught.value.rule


def test_mandate_built_from_plain_strings_uses_the_enums():
    from_row = mandate(kind="one_off", status="blocked")
    assert from_row.kind is MandateKind.ONE_OFF
    assert from_row.status is MandateStatus.BLOCKED


def test_mandate_with_an_unknown_kind_is_a_mandate_error():
    with pytest.raises(errors.MandateError):
        mandate(kind="weekly")


def test_mandate_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        mandate().status = MandateStatus.BLOCKED  # type: ignore[misc]


# --- status transitions ---------------------------------------------------------------------
A, H, B, R, S, L = (
    MandateStatus.ACTIVE,
    MandateStatus.HELD,
    MandateStatus.BLOCKED,
    MandateStatus.REVOKED,
    MandateStatus.SUPERSEDED,
    MandateStatus.LAPSED,
)
ALLOWED = {
    A: {A, H, B, R, S, L},
    H: {H, A, B, R, S, L},
    B: {B, A, R, S, L},
    L: {L, R, S},
    R: {R},
    S: {S},
}


@pytest.mark.parametrize("current", list(MandateStatus))
@pytest.mark.parametrize("new", list(MandateStatus))
def test_transition_table(current, new):
    allowed = new in ALLOWED[current]
    assert current.can_transition_to(new) is allowed
    if allowed:
        assert transition(current, new) is new
    else:
        with pytest.raises(errors.MandateError):
            transition(current, new)


@pytest.mark.parametrize("terminal", [R, S])
def test_nothing_leaves_revoked_or_superseded(terminal):
    assert terminal.is_final()
    for other in MandateStatus:
        if other is not terminal:
            assert not terminal.can_transition_to(other)


def test_blocked_mandate_comes_back_only_through_unblock_to_active():
    assert transition(B, A) is A


def test_a_held_mandate_is_released_to_active_and_a_blocked_one_is_never_held_on_top():
    assert transition(H, A) is A
    assert transition(H, B) is B
    with pytest.raises(errors.MandateError):
        transition(B, H)


def test_a_held_mandate_cannot_be_collected_and_says_why():
    with pytest.raises(errors.MandateNotActive) as caught:
        check_collectable(mandate(status=H), dt.date(2026, 12, 10))
    assert "held after a refund (MD06)" in str(caught.value)
    assert caught.value.reason_code == "MD06"


def test_lapsed_mandate_cannot_be_reactivated():
    with pytest.raises(errors.MandateError) as caught:
        transition(L, A)
    assert str(caught.value) == "mandate_status 'lapsed' cannot change to active"


def test_only_active_mandates_are_usable():
    assert [s for s in MandateStatus if s.is_usable()] == [A]


def test_unknown_status_is_a_mandate_error():
    with pytest.raises(errors.MandateError):
        transition(A, "cancelled")  # type: ignore[arg-type]


# --- amendments -----------------------------------------------------------------------------
IBAN_BANK_A = "DE89370400440532013000"  # bank code 37040044
IBAN_BANK_A_OTHER_ACCOUNT = "DE62370400440532013001"  # same bank code
IBAN_BANK_B = "DE12500105170648489890"  # bank code 50010517
IBAN_OTHER_COUNTRY = "NL91ABNA0417164300"

SNAPSHOT = MandateSnapshot(
    reference=REFERENCE,
    creditor_id="FR72ZZZ123456",
    creditor_name="Gestion Immobiliere Martin",
    debtor_iban=IBAN_BANK_A,
    debtor_bic="COBADEFFXXX",
)


def changed(**overrides: object) -> MandateSnapshot:
    return dataclasses.replace(SNAPSHOT, **overrides)  # type: ignore[arg-type]


def test_no_amendment_without_a_previous_snapshot():
    assert amendment_between(None, SNAPSHOT) is None


def test_no_amendment_when_nothing_changed():
    assert amendment_between(SNAPSHOT, SNAPSHOT) is None


def test_iban_written_differently_is_not_a_change():
    assert amendment_between(SNAPSHOT, changed(debtor_iban="de89 3704 0044 0532 0130 00")) is None


def test_bic_change_alone_is_not_an_amendment():
    assert amendment_between(SNAPSHOT, changed(debtor_bic=None)) is None


def test_changed_reference_carries_the_original_mandate_id():
    assert amendment_between(SNAPSHOT, changed(reference="MNDT-2026-000001")) == Amendment(
        original_mandate_id=REFERENCE
    )


def test_changed_creditor_identifier_carries_original_id_and_name():
    current = changed(creditor_id="DE98ZZZ09999999999", creditor_name="Poliris")
    assert amendment_between(SNAPSHOT, current) == Amendment(
        original_creditor_id="FR72ZZZ123456", original_creditor_name="Gestion Immobiliere Martin"
    )


def test_changed_creditor_identifier_keeps_the_name_even_if_unchanged():
    assert amendment_between(SNAPSHOT, changed(creditor_id="DE98ZZZ09999999999")) == Amendment(
        original_creditor_id="FR72ZZZ123456", original_creditor_name="Gestion Immobiliere Martin"
    )


def test_changed_creditor_name_alone_carries_the_original_name():
    assert amendment_between(SNAPSHOT, changed(creditor_name="Martin SAS")) == Amendment(
        original_creditor_name="Gestion Immobiliere Martin"
    )


def test_new_account_at_the_same_bank_carries_the_original_iban():
    assert amendment_between(SNAPSHOT, changed(debtor_iban=IBAN_BANK_A_OTHER_ACCOUNT)) == Amendment(
        original_debtor_iban=IBAN_BANK_A
    )


def test_new_account_at_the_same_bank_with_a_changed_bic_is_still_the_same_bank():
    current = changed(debtor_iban=IBAN_BANK_A_OTHER_ACCOUNT, debtor_bic="DEUTDEFFXXX")
    assert amendment_between(SNAPSHOT, current) == Amendment(original_debtor_iban=IBAN_BANK_A)


def test_move_to_another_bank_is_smnda_without_the_original_iban():
    amendment = amendment_between(SNAPSHOT, changed(debtor_iban=IBAN_BANK_B))
    assert amendment == Amendment(new_debtor_agent=True)
    assert amendment.original_debtor_iban is None


def test_move_to_another_bank_is_smnda_even_without_bics():
    previous = changed(debtor_bic=None)
    assert amendment_between(previous, changed(debtor_iban=IBAN_BANK_B, debtor_bic=None)) == Amendment(
        new_debtor_agent=True
    )


def test_move_to_another_country_is_smnda():
    assert amendment_between(SNAPSHOT, changed(debtor_iban=IBAN_OTHER_COUNTRY)) == Amendment(new_debtor_agent=True)


def test_several_changes_are_reported_together():
    current = changed(reference="MNDT-2026-000001", debtor_iban=IBAN_BANK_B)
    assert amendment_between(SNAPSHOT, current) == Amendment(original_mandate_id=REFERENCE, new_debtor_agent=True)


def test_invalid_iban_in_a_snapshot_is_our_checksum_error_with_the_iban_masked():
    with pytest.raises(errors.InvalidChecksum) as caught:
        amendment_between(SNAPSHOT, changed(debtor_iban="DE00370400440532013000"))
    assert caught.value.field == "debtor_iban"
    assert "0532013000" not in str(caught.value)


def test_malformed_iban_is_our_format_error():
    with pytest.raises(errors.InvalidFormat):
        amendment_between(SNAPSHOT, changed(debtor_iban="not an iban"))
