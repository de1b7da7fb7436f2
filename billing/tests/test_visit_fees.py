"""No-show and late-cancellation fees (billing/visit_fees.py, issue 19): the clinic's policy per
visit type, charged on the patient's account when scheduling marks a no-show or a late cancel,
once per visit (even concurrently), reversed when staff undo the no-show, waived with a reason,
shown on the balance and before booking."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from billing import ledger, payments, visit_fees
from billing.models import LedgerEntry, MissedVisitFee, MissedVisitPolicy
from practice.models import ClinicSettings
from practice.rights import patient_erase
from scheduling import services
from scheduling.errors import InvalidTransitionError
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import in_clinic, session_client

D = Decimal
Status = MissedVisitFee.Status


def _world():
    doctor = f.practitioner()
    kind = f.appointment_type(doctor, minutes=60, notice=0, horizon=800)
    other_kind = f.appointment_type(doctor, minutes=30, notice=0, horizon=800)
    patient = f.patient(first="Robin")
    return doctor, kind, other_kind, patient


def _book(doctor, kind, patient, hour: int = 10, weeks: int = 1) -> Appointment:
    start = f.local(f.next_weekday(2, weeks_ahead=weeks), hour)
    return services.appointment_book(
        patient=patient, practitioner=doctor, appointment_type=kind, start=start
    )


def _owed(patient) -> Decimal:
    return ledger.patient_balance(patient=patient).patient


def test_a_no_show_charges_the_visit_types_fee_once_and_undoing_it_reverses_it(acme, make_user):
    desk = make_user(acme, "front_desk")
    with in_clinic(acme):
        doctor, kind, other_kind, patient = _world()
        MissedVisitPolicy.objects.create(no_show_fee=D("40.00"), late_cancel_fee=D("20.00"))
        MissedVisitPolicy.objects.create(
            appointment_type=kind, no_show_fee=D("75.00"), late_cancel_fee=D("50.00")
        )
        visit = _book(doctor, kind, patient)
        after = visit.start + timedelta(minutes=20)
        services.appointment_no_show(appointment=visit, by=desk, now=after)
        fee = MissedVisitFee.objects.get(appointment=visit)
        assert (fee.kind, fee.amount, fee.status) == ("no_show", D("75.00"), "charged")
        assert fee.entry.party == "patient" and fee.entry.amount == D("75.00")
        assert _owed(patient) == D("75.00")
        # Marked again (a second desk's click): refused by the state machine, still one fee.
        with pytest.raises(InvalidTransitionError):
            services.appointment_no_show(appointment=visit, by=desk, now=after)
        assert visit_fees.fee_charge(appointment=visit, kind="no_show").pk == fee.pk
        assert MissedVisitFee.objects.filter(appointment=visit).count() == 1
        # Undone: the visit is booked again and the fee reversed by a second entry.
        services.appointment_no_show_undo(appointment=visit, by=desk)
        visit.refresh_from_db()
        fee.refresh_from_db()
        assert visit.status == "booked" and fee.status == "reversed"
        assert fee.reversal.reverses_id == fee.entry_id and _owed(patient) == D("0.00")
        # Marked again after all: a new fee in force, the reversed one kept.
        services.appointment_no_show(appointment=visit, by=desk, now=after)
        assert list(
            MissedVisitFee.objects.filter(appointment=visit).values_list("status", flat=True)
        ) == ["charged", "reversed"]
        assert _owed(patient) == D("75.00")
        # Another type falls back to the clinic-wide row.
        other = _book(doctor, other_kind, patient, hour=14)
        services.appointment_no_show(appointment=other, now=other.start + timedelta(minutes=5))
        assert MissedVisitFee.objects.get(appointment=other).amount == D("40.00")


def test_the_database_keeps_one_fee_in_force_per_visit(acme):
    with in_clinic(acme):
        doctor, kind, _, patient = _world()
        MissedVisitPolicy.objects.create(no_show_fee=D("40.00"), late_cancel_fee=D("20.00"))
        visit = _book(doctor, kind, patient)
        fee = visit_fees.fee_charge(appointment=visit, kind="no_show")
        entry = ledger.entry_add(patient=patient, party="patient", kind="charge", amount=D(1))
        with pytest.raises(IntegrityError, match="missed_visit_fee_once_per_visit"):
            with transaction.atomic():
                MissedVisitFee.objects.create(
                    appointment=visit, patient=patient, kind="late_cancel", amount=D(1),
                    entry=entry,
                )  # fmt: skip
        with pytest.raises(IntegrityError, match="missed_visit_fee_waived_with_reason"):
            with transaction.atomic():
                MissedVisitFee.objects.filter(pk=fee.pk).update(status="waived", reversal=entry)


def test_two_concurrent_charges_of_one_visit_make_one_fee(committed_acme):
    with in_clinic(committed_acme):
        doctor, kind, _, patient = _world()
        MissedVisitPolicy.objects.create(no_show_fee=D("40.00"), late_cancel_fee=D("20.00"))
        visit = _book(doctor, kind, patient)
    barrier = threading.Barrier(4)
    outcomes: list = []

    def run() -> None:
        try:
            with in_clinic(committed_acme), transaction.atomic():
                barrier.wait(timeout=30)
                outcomes.append(visit_fees.fee_charge(appointment=visit, kind="no_show").pk)
        except Exception as error:  # noqa: BLE001
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with in_clinic(committed_acme):
        fees = list(MissedVisitFee.objects.filter(appointment=visit))
        assert len(fees) == 1 and outcomes == [fees[0].pk] * 4, outcomes
        assert LedgerEntry.objects.filter(patient=patient).count() == 1
        assert _owed(patient) == D("40.00")


def test_a_late_cancel_is_charged_unless_on_time_within_grace_or_the_erasures(acme, make_user):
    desk = make_user(acme, "front_desk")
    admin = make_user(acme, "clinic_admin")
    with in_clinic(acme):
        doctor, kind, _, patient = _world()
        MissedVisitPolicy.objects.create(
            no_show_fee=D("40.00"), late_cancel_fee=D("20.00"), grace_minutes=30
        )
        on_time = _book(doctor, kind, patient, hour=9)
        services.appointment_cancel(
            appointment=on_time, by=desk, now=on_time.start - timedelta(hours=48)
        )
        late = _book(doctor, kind, patient, hour=11)
        services.appointment_cancel(
            appointment=late, by=desk, reason="Called in", now=late.start - timedelta(hours=2)
        )
        assert not MissedVisitFee.objects.filter(appointment=on_time).exists()
        fee = MissedVisitFee.objects.get(appointment=late)
        assert (fee.kind, fee.amount) == ("late_cancel", D("20.00"))
        # A visit booked inside the window and cancelled 10 minutes later: within the grace.
        soon = _book(doctor, kind, patient, hour=15, weeks=2)
        booked_at = soon.start - timedelta(hours=5)  # 10:00, for 13:00 the same day
        with time_machine.travel(booked_at, tick=False):
            quick = services.appointment_book(
                patient=patient, practitioner=doctor, appointment_type=kind,
                start=soon.start - timedelta(hours=2),
            )  # fmt: skip
        services.appointment_cancel(
            appointment=quick, by=desk, now=booked_at + timedelta(minutes=10)
        )
        assert Appointment.objects.get(pk=quick.pk).is_late_cancel
        assert not MissedVisitFee.objects.filter(appointment=quick).exists()
        # The erasure cancels the patient's visits to come: the clinic's cancel, no fee.
        patient_erase(
            patient=patient, by=admin, reason="GDPR 17", now=soon.start - timedelta(hours=1)
        )
        assert Appointment.objects.get(pk=soon.pk).status == "cancelled"
        assert not MissedVisitFee.objects.filter(appointment=soon).exists()


def test_without_a_policy_the_clinic_settings_fee_applies_and_zero_charges_nothing(acme):
    with in_clinic(acme):
        doctor, kind, _, patient = _world()
        visit = _book(doctor, kind, patient)
        services.appointment_no_show(appointment=visit, now=visit.start + timedelta(hours=1))
        assert not MissedVisitFee.objects.exists()  # no fee anywhere
        ClinicSettings.objects.filter(pk=1).update(late_change_fee=D("35.00"))
        policy = visit_fees.policy_for(kind)
        assert (policy.no_show_fee, policy.late_cancel_fee, policy.any) == (D(35), D(35), True)
        second = _book(doctor, kind, patient, hour=14)
        services.appointment_no_show(appointment=second, now=second.start + timedelta(hours=1))
        assert MissedVisitFee.objects.get(appointment=second).amount == D("35.00")


def test_staff_waive_a_fee_with_a_reason_once(acme, make_user):
    desk = make_user(acme, "front_desk")
    with in_clinic(acme):
        doctor, kind, _, patient = _world()
        MissedVisitPolicy.objects.create(no_show_fee=D("40.00"), late_cancel_fee=D("20.00"))
        visit = _book(doctor, kind, patient)
        services.appointment_no_show(appointment=visit, now=visit.start + timedelta(hours=1))
        fee = MissedVisitFee.objects.get(appointment=visit)
        with pytest.raises(ValidationError) as refused:
            visit_fees.fee_waive(fee=fee, reason="  ", by=desk)
        assert "reason" in refused.value.message_dict
        waived = visit_fees.fee_waive(fee=fee, reason="Snowstorm", by=desk)
        assert (waived.status, waived.reason, waived.decided_by) == ("waived", "Snowstorm", desk)
        assert _owed(patient) == D("0.00")
        with pytest.raises(visit_fees.FeeNotChargedError):
            visit_fees.fee_waive(fee=fee, reason="again", by=desk)
        assert LedgerEntry.objects.filter(patient=patient).count() == 2


def _signed_in_world(acme, make_user):
    """`_world()`'s practitioner, visit type and patient, the patient signed up (their own
    user) and the clinic's fees 40.00 for a no-show, 20.00 for a late cancel."""
    doctor, kind, _, patient = _world()
    user = make_user(acme, "patient")
    patient.user = user
    patient.save(update_fields=["user"])
    MissedVisitPolicy.objects.create(no_show_fee=D("40.00"), late_cancel_fee=D("20.00"))
    return doctor, kind, patient, user


def test_the_balance_lists_fees_apart_from_credit_and_the_admin_waives(
    acme, make_user, client_for, admin_as
):
    with in_clinic(acme):
        doctor, kind, patient, user = _signed_in_world(acme, make_user)
        visit = _book(doctor, kind, patient)
        services.appointment_no_show(appointment=visit, now=visit.start + timedelta(hours=1))
        fee = MissedVisitFee.objects.get(appointment=visit)
    answer = client_for(acme, user).get("/api/v1/me/balance/")
    assert answer.status_code == 200, answer.content[:300]
    body = answer.json()
    assert D(body["patient"]) == D("40.00") and D(body["credit"]) == D("0.00")
    assert [(x["kind"], D(x["amount"]), x["status"]) for x in body["fees"]] == [
        ("no_show", D("40.00"), "charged")
    ]
    page = session_client(acme, user).get("/balance/")
    assert page.status_code == 200 and b'data-testid="fees"' in page.content
    assert b"No-show" in page.content and b"$40.00" in page.content
    # The front desk waives it from the admin's list, the reason beside the action menu.
    desk = admin_as("front_desk")
    url = "/admin/billing/missedvisitfee/"
    assert desk.get(url).status_code == 200
    desk.post(url, {"action": "waive_selected", "_selected_action": [fee.pk], "reason": ""})
    with in_clinic(acme):
        assert MissedVisitFee.objects.get(pk=fee.pk).status == "charged"  # no reason, no waiver
    desk.post(url, {"action": "waive_selected", "_selected_action": [fee.pk], "reason": "Storm"})
    with in_clinic(acme):
        assert MissedVisitFee.objects.get(pk=fee.pk).status == "waived"


def test_the_booking_page_states_the_visit_types_fees_before_booking(acme, make_user):
    with in_clinic(acme):
        doctor, kind, _, patient = _world()
        user = make_user(acme, "patient")
        patient.user = user
        patient.save(update_fields=["user"])
        MissedVisitPolicy.objects.create(
            appointment_type=kind, no_show_fee=D("75.00"), late_cancel_fee=D("50.00"),
            grace_minutes=15,
        )  # fmt: skip
        start = f.local(f.next_weekday(2), 10)
    page = session_client(acme, user).get(
        "/book/", {"practitioner": doctor.pk, "type": kind.pk, "start": start.isoformat()}
    )
    assert page.status_code == 200, page.content[:500]
    text = page.content.decode()
    assert 'data-testid="fee-policy"' in text
    assert "costs $50.00; a missed visit costs $75.00" in text
    assert "within 15 minutes of booking is free" in text


def test_payments_on_the_account_pay_the_fees_first_and_only_the_rest_is_credit(
    acme, make_user, client_for
):
    with in_clinic(acme):
        doctor, kind, patient, user = _signed_in_world(acme, make_user)
        first = _book(doctor, kind, patient)
        services.appointment_no_show(appointment=first, now=first.start + timedelta(hours=1))
        payments.payment_take(patient=patient, amount=D("25.00"), method="cash")
    me = client_for(acme, user)

    def owed() -> tuple[D, D, list]:
        body = me.get("/api/v1/me/balance/").json()
        return D(body["patient"]), D(body["credit"]), [D(x["owed"]) for x in body["fees"]]

    assert owed() == (D("15.00"), D("0.00"), [D("15.00")])
    with in_clinic(acme):
        payments.payment_take(patient=patient, amount=D("30.00"), method="card")
    assert owed() == (D("-15.00"), D("-15.00"), [D("0.00")])
    page = session_client(acme, user).get("/balance/").content.decode()
    assert "Paid" in page and "$15.00" in page
    with in_clinic(acme):  # waived: the money that paid it is credit again
        visit_fees.fee_waive(
            fee=MissedVisitFee.objects.get(appointment=first), reason="Storm", by=None
        )
    assert owed() == (D("-55.00"), D("-55.00"), [D("0.00")])
