from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from scheduling import selectors, series, services
from scheduling.errors import (
    BookingRefusedError,
    IdempotencyKeyReusedError,
    InvalidTransitionError,
    LateCancelError,
    OverbookNotAllowedError,
    SeriesConflictError,
    SlotUnavailableError,
)
from scheduling.models import Appointment, AppointmentType, TimeOff
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


@pytest.fixture
def setup(acme, make_user):
    desk = make_user(acme, "front_desk")
    with in_clinic(acme):
        s = f.specialty("behavior-analysis")
        p = f.practitioner(specialties=(s,))
        others = [f.practitioner(specialties=(s,)) for _ in range(2)]
        t = f.appointment_type(p, *others, minutes=60, after=10)
        yield {
            "p": p,
            "others": others,
            "t": t,
            "patient": f.patient(),
            "desk": desk,
            "day": f.next_weekday(1),
        }


def _book(setup, hour=10, minute=0, **kw):
    kw.setdefault("patient", setup["patient"])
    kw.setdefault("practitioner", setup["p"])
    kw.setdefault("appointment_type", setup["t"])
    kw.setdefault("booked_by", setup["desk"])
    return services.appointment_book(start=f.local(setup["day"], hour, minute), **kw)


def test_booking_creates_one_appointment_with_its_blocked_range(setup):
    a = _book(setup)
    assert a.status == "booked" and a.end - a.start == timedelta(minutes=60)
    assert a.blocked.upper == a.end + timedelta(minutes=10)
    assert a.events.get().kind == "booked"


def test_overlapping_booking_is_a_409_with_conflicts_and_alternatives(setup):
    first = _book(setup)
    other_patient = f.patient()
    with pytest.raises(SlotUnavailableError) as error:
        _book(setup, hour=10, minute=30, patient=other_patient)
    extra = error.value.extra
    assert [c["id"] for c in extra["conflicting_appointments"]] == [first.pk]
    assert set(extra["conflicting_appointments"][0]) == {"id", "start", "end"}
    alternatives = extra["suggested_alternatives"]
    assert len(alternatives) >= 3
    assert alternatives[0]["practitioner"] == setup["p"].pk
    assert Appointment.objects.count() == 1


def test_buffers_are_part_of_the_conflict(setup):
    _book(setup, hour=10)  # 10:00-11:00, blocked until 11:10
    with pytest.raises(SlotUnavailableError):
        _book(setup, hour=11, patient=f.patient())
    assert _book(setup, hour=11, minute=15, patient=f.patient()).pk


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"start_days": -30}, "start-in-past", "start"),
        ({"notice": 30 * 24 * 60}, "inside-minimum-notice", "start"),
        ({"horizon": 1}, "beyond-horizon", "start"),
        ({"hour": 20}, "outside-working-hours", "start"),
        ({"time_off": True}, "practitioner-time-off", "start"),
        ({"not_offered": True}, "type-not-offered", "appointment_type"),
        ({"telehealth_only_type": True}, "mode-not-offered", "telehealth"),
        ({"inactive_patient": True}, "patient-inactive", "patient"),
    ],
)
def test_booking_rules_refuse_naming_the_field(setup, change, code, field):
    t, p, day = setup["t"], setup["p"], setup["day"]
    kwargs = {}
    hour = change.get("hour", 10)
    if "start_days" in change:
        setup["day"] = timezone.now().date() + timedelta(days=change["start_days"])
    if "notice" in change or "horizon" in change:
        AppointmentType.objects.filter(pk=t.pk).update(
            min_notice_minutes=change.get("notice", 0), horizon_days=change.get("horizon", 800)
        )
        t.refresh_from_db()
    if change.get("time_off"):
        TimeOff.objects.create(practitioner=p, start=f.local(day, 8), end=f.local(day, 12))
    if change.get("not_offered"):
        kwargs["practitioner"] = f.practitioner()
    if change.get("telehealth_only_type"):
        p.offers_telehealth = False
        p.save()
        kwargs["appointment_type"] = f.appointment_type(p, mode="telehealth")
    if change.get("inactive_patient"):
        kwargs["patient"] = f.patient(active=False)
    if "notice" in change:
        # The type's minimum notice is the patients' rule (staff are held to the clinic's
        # staff notice instead: backoffice/tests/test_board_moves.py).
        kwargs["booked_by"] = None
    with pytest.raises(BookingRefusedError) as error:
        _book(setup, hour=hour, **kwargs)
    assert error.value.code == code
    assert field in error.value.extra["errors"]
    assert Appointment.objects.count() == 0


def test_idempotent_repeat_returns_the_first_booking(setup):
    first = _book(setup, idempotency_key="abc-123")
    again = _book(setup, idempotency_key="abc-123")
    assert again.pk == first.pk and getattr(again, "replayed", False)
    with pytest.raises(IdempotencyKeyReusedError):
        _book(setup, hour=13, idempotency_key="abc-123")
    assert Appointment.objects.count() == 1


def test_raw_sql_overlapping_insert_is_refused_by_postgres(setup):
    a = _book(setup)
    columns = (
        'practitioner_id, patient_id, appointment_type_id, location_id, start, "end", blocked, '
        "status, source, is_telehealth, telehealth_url, notes, created_at, updated_at, overbooked, "
        "cancellation_reason, is_late_cancel, reschedule_count, uid, authorization_warning"
    )
    sql = (
        f"INSERT INTO scheduling_appointment ({columns}) VALUES (%s, %s, %s, %s, %s, %s, "
        "tstzrange(%s, %s), 'booked', 'staff', false, '', '', now(), now(), false, '', false, 0, "
        "gen_random_uuid(), '')"
    )
    start = a.start + timedelta(minutes=30)
    end = start + timedelta(hours=1)
    params = [a.practitioner_id, f.patient().pk, a.appointment_type_id, a.location_id, start, end]
    with pytest.raises(IntegrityError, match="appointment_no_overlap"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [*params, start, end])
    # The same insert marked as a staff overbook goes through (the constraint's condition).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql.replace("now(), false, ''", "now(), true, ''")
            .replace("updated_at, overbooked,", "updated_at, overbooked,")
            .replace("(practitioner_id,", "(overbooked_by_id, practitioner_id,")
            .replace("VALUES (%s,", "VALUES (%s, %s,"),
            [setup["desk"].pk, *params, start, end],
        )
    assert selectors.appointments_overlapping() == []


def test_staff_may_overbook_and_it_is_recorded(setup):
    _book(setup)
    over = _book(setup, minute=30, patient=f.patient(), overbook=True)
    assert over.overbooked and over.overbooked_by == setup["desk"]
    late = _book(setup, hour=20, patient=f.patient(), overbook=True)  # outside hours too
    assert late.pk


def test_patients_may_not_overbook(setup, acme, make_user):
    pat_user = make_user(acme, "patient")
    with pytest.raises(OverbookNotAllowedError):
        _book(setup, booked_by=pat_user, overbook=True)


def test_reschedule_moves_atomically_and_failure_leaves_original(setup):
    a = _book(setup, hour=10)
    b = _book(setup, hour=14, patient=f.patient())
    moved = services.appointment_reschedule(appointment=a, start=f.local(setup["day"], 10, 30))
    assert moved.start == f.local(setup["day"], 10, 30)  # overlaps its own old time: fine
    with pytest.raises(SlotUnavailableError) as error:
        services.appointment_reschedule(appointment=a, start=f.local(setup["day"], 14))
    assert [c["id"] for c in error.value.extra["conflicting_appointments"]] == [b.pk]
    a.refresh_from_db()
    assert a.start == f.local(setup["day"], 10, 30) and a.status == "booked"
    assert a.reschedule_count == 1


def test_cancel_frees_the_slot_and_marks_late_cancels(setup, acme, make_user):
    a = _book(setup)
    cancelled = services.appointment_cancel(appointment=a, reason="sick")
    assert cancelled.status == "cancelled" and not cancelled.is_late_cancel
    assert _book(setup, patient=f.patient()).pk  # the slot is free again
    owner = make_user(acme, "patient")
    soon = _book(setup, hour=15, patient=f.patient(user=owner))
    with time_machine.travel(soon.start - timedelta(hours=3)):
        with pytest.raises(LateCancelError):
            services.appointment_cancel(appointment=soon, by=owner)  # the patient, online
        late = services.appointment_cancel(appointment=soon, by=setup["desk"])
    assert late.is_late_cancel


def test_lifecycle_transitions_and_illegal_ones(setup):
    a = _book(setup)
    with pytest.raises(InvalidTransitionError):
        services.appointment_complete(appointment=a)  # not started yet
    with time_machine.travel(a.start + timedelta(minutes=5)):
        services.appointment_check_in(appointment=a)
        done = services.appointment_complete(appointment=a)
    assert done.status == "completed" and done.completed_at
    with pytest.raises(InvalidTransitionError):
        services.appointment_cancel(appointment=a)
    b = services.appointment_cancel(appointment=_book(setup, hour=13, patient=f.patient()))
    with time_machine.travel(b.start + timedelta(minutes=5)):
        with pytest.raises(InvalidTransitionError):
            services.appointment_complete(appointment=b)
        with pytest.raises(InvalidTransitionError):
            services.appointment_no_show(appointment=b)


def test_series_is_all_or_nothing_by_default(setup):
    first = f.local(setup["day"], 9)
    blocker = _book(setup, hour=9, patient=f.patient())
    services.appointment_reschedule(appointment=blocker, start=first + timedelta(days=7))
    with pytest.raises(SeriesConflictError) as error:
        series.appointment_series_book(
            patient=setup["patient"],
            practitioner=setup["p"],
            appointment_type=setup["t"],
            first_start=first,
            rrule="FREQ=WEEKLY;COUNT=4",
            booked_by=setup["desk"],
        )
    [conflict] = error.value.extra["occurrences"]
    assert conflict["code"] == "slot-unavailable"
    assert conflict["conflicting_appointments"][0]["id"] == blocker.pk
    assert Appointment.objects.filter(patient=setup["patient"]).count() == 0


def test_series_partial_books_the_free_ones_and_reports_the_rest(setup):
    first = f.local(setup["day"], 9)
    blocker = _book(setup, hour=9, patient=f.patient())
    services.appointment_reschedule(appointment=blocker, start=first + timedelta(days=7))
    result = series.appointment_series_book(
        patient=setup["patient"],
        practitioner=setup["p"],
        appointment_type=setup["t"],
        first_start=first,
        rrule="FREQ=WEEKLY;COUNT=4",
        booked_by=setup["desk"],
        partial=True,
    )
    assert len(result.booked) == 3 and len(result.skipped) == 1
    assert {a.start.astimezone(first.tzinfo).time() for a in result.booked} == {time(9)}
    cancelled = series.appointment_series_cancel(
        series=result.series, after=first + timedelta(days=1)
    )
    assert len(cancelled) == 2


@time_machine.travel(datetime(2027, 2, 22, 12, tzinfo=UTC))  # a week before the series starts
def test_series_three_a_week_keeps_wall_clock_across_dst(acme, make_user):
    with in_clinic(acme):
        p = f.practitioner()
        t = f.appointment_type(p, minutes=45)
        first = f.local(timezone.datetime(2027, 3, 1).date(), 16)  # a Monday, before the change
        result = series.appointment_series_book(
            patient=f.patient(),
            practitioner=p,
            appointment_type=t,
            first_start=first,
            rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=24",
        )
        assert len(result.booked) == 24
        tz = first.tzinfo
        assert {a.start.astimezone(tz).strftime("%H:%M") for a in result.booked} == {"16:00"}
        offsets = {a.start.astimezone(tz).utcoffset() for a in result.booked}
        assert len(offsets) == 2  # EST and EDT


def test_series_rule_must_be_bounded(setup):
    with pytest.raises(BookingRefusedError) as error:
        series.appointment_series_book(
            patient=setup["patient"],
            practitioner=setup["p"],
            appointment_type=setup["t"],
            first_start=f.local(setup["day"], 9),
            rrule="FREQ=DAILY",
        )
    assert error.value.code == "rrule-unbounded"


@pytest.mark.parametrize(
    "start", [datetime(9999, 12, 31, 10, tzinfo=UTC), datetime(1, 1, 1, 10, tzinfo=UTC)]
)
def test_booking_far_from_today_is_a_validation_error_naming_start(setup, start):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        services.appointment_book(
            patient=setup["patient"], practitioner=setup["p"], appointment_type=setup["t"],
            start=start, booked_by=setup["desk"],
        )  # fmt: skip
    assert set(refused.value.message_dict) == {"start"}
    assert not Appointment.objects.exists()


def test_a_move_far_from_today_is_a_validation_error_naming_start(setup):
    from django.core.exceptions import ValidationError

    booked = _book(setup)
    with pytest.raises(ValidationError) as refused:
        services.appointment_reschedule(
            appointment=booked, start=datetime(9999, 12, 31, 10, tzinfo=UTC)
        )
    assert set(refused.value.message_dict) == {"start"}
    booked.refresh_from_db()
    assert booked.start == f.local(setup["day"], 10)
