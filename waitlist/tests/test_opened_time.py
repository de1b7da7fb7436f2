"""Time that opens (working hours added or widened, time off or a closure removed or shortened) is
offered to
the waitlist: what scheduling's `schedule_opened` says opened, what of it the waitlist wants
(`opened_spans`, the receiver's part) and which free slots of it are held for whom
(`opened_time_offer`, the task's part), at an instant each test chooses. The receiver's queueing
through a real worker is in test_worker.py."""

from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import time_machine

from scheduling import services as scheduling
from scheduling.models import Closure, TimeOff, WorkingHours
from scheduling.signals import schedule_opened
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

from .. import services
from ..models import WaitlistEntry, WaitlistOffer

NEW_YORK = ZoneInfo("America/New_York")
# A Monday morning in New York; SATURDAY is that week's, on which the practitioners do not work.
NOW = datetime(2027, 1, 4, 9, 0, tzinfo=NEW_YORK)
WEDNESDAY = date(2027, 1, 6)
SATURDAY = date(2027, 1, 9)
WEEKDAYS = (0, 1, 2, 3, 4)


@contextmanager
def opened_changes():
    """The `schedule_opened` signals sent in the block, as (practitioner id, OpenedTime)."""
    seen: list = []

    def listen(sender, *, practitioner_id, opened, **kwargs) -> None:
        seen.append((practitioner_id, opened))

    schedule_opened.connect(listen, dispatch_uid="test-opened")
    try:
        yield seen
    finally:
        schedule_opened.disconnect(dispatch_uid="test-opened")


def _offer_opened(seen) -> list[WaitlistOffer]:
    """What the receiver and then the task do with the changes seen, at NOW."""
    offers = []
    for practitioner_id, opened in seen:
        spans = services.opened_spans(practitioner_id=practitioner_id, opened=opened, now=NOW)
        offers += services.opened_time_offer(practitioner_id=practitioner_id, spans=spans, now=NOW)
    return offers


def _entry(practitioner, kind, day: date, **wishes) -> WaitlistEntry:
    return services.entry_create(
        patient=f.patient(first="Wanda"),
        practitioner=practitioner,
        appointment_type=kind,
        earliest_date=wishes.pop("earliest_date", day),
        latest_date=wishes.pop("latest_date", day),
        **wishes,
    )


def _starts(offers) -> list[datetime]:
    return [offer.start for offer in offers]


def test_hours_added_for_a_day_in_range_are_offered_earliest_entry_first(acme):
    with in_clinic(acme), time_machine.travel(NOW):
        practitioner = f.practitioner(weekdays=WEEKDAYS)
        kind = f.appointment_type(practitioner, minutes=60)
        first = _entry(practitioner, kind, SATURDAY)
        second = _entry(practitioner, kind, SATURDAY)
        afternoon = _entry(practitioner, kind, SATURDAY, preferred_start_time=time(11))
        other_week = _entry(practitioner, kind, SATURDAY + timedelta(days=14))
        with opened_changes() as seen:
            WorkingHours.objects.create(
                practitioner=practitioner, weekday=5, start_time=time(9), end_time=time(12),
                location=practitioner.locations.get(),
            )  # fmt: skip
        spans = services.opened_spans(practitioner_id=practitioner.pk, opened=seen[0][1], now=NOW)
        # the Saturdays from now to the last waiting entry's, and no other day
        assert spans == [
            (f.local(day, 9), f.local(day, 12))
            for day in (SATURDAY, SATURDAY + timedelta(days=7), SATURDAY + timedelta(days=14))
        ]
        offers = _offer_opened(seen)
        held = {offer.entry_id: offer.start for offer in offers}
        assert held == {
            first.pk: f.local(SATURDAY, 9),
            second.pk: f.local(SATURDAY, 10),
            afternoon.pk: f.local(SATURDAY, 11),
            other_week.pk: f.local(SATURDAY + timedelta(days=14), 9),
        }
        assert all(offer.status == "held" and offer.freed_by_id is None for offer in offers)
        assert set(WaitlistEntry.objects.values_list("status", flat=True)) == {"offered"}


def test_a_removed_time_off_is_offered_and_a_shortened_one_offers_what_it_gave_back(acme):
    with in_clinic(acme), time_machine.travel(NOW):
        practitioner = f.practitioner()
        kind = f.appointment_type(practitioner, minutes=60)
        away = TimeOff.objects.create(
            practitioner=practitioner, start=f.local(WEDNESDAY, 9), end=f.local(WEDNESDAY, 17)
        )
        morning = _entry(practitioner, kind, WEDNESDAY, preferred_end_time=time(12))
        anytime = _entry(practitioner, kind, WEDNESDAY)
        with opened_changes() as seen:
            away.end = f.local(WEDNESDAY, 13)
            away.save()  # shortened: 13:00 to 17:00 given back
        assert [opened.freed for _, opened in seen] == [
            ((f.local(WEDNESDAY, 13), f.local(WEDNESDAY, 17)),)
        ]
        offers = _offer_opened(seen)
        assert [(o.entry_id, o.start) for o in offers] == [(anytime.pk, f.local(WEDNESDAY, 13))]
        with opened_changes() as seen:
            away.delete()  # the morning too
        offers = _offer_opened(seen)
        assert [(o.entry_id, o.start) for o in offers] == [(morning.pk, f.local(WEDNESDAY, 9))]


def test_a_closure_removed_or_shortened_offers_its_days_to_those_it_kept_from_work(acme):
    THURSDAY = WEDNESDAY + timedelta(days=1)
    with in_clinic(acme), time_machine.travel(NOW):
        here = f.practitioner(weekdays=WEEKDAYS)
        elsewhere = f.practitioner(weekdays=WEEKDAYS)  # works at another location
        kind = f.appointment_type(here, minutes=60)
        other_kind = f.appointment_type(elsewhere, minutes=60)
        clinic_wide = Closure.objects.create(
            name="Snow day", start_date=WEDNESDAY, end_date=WEDNESDAY
        )
        at_here = Closure.objects.create(
            name="Repairs", start_date=WEDNESDAY, end_date=THURSDAY,
            location=here.locations.get(),
        )  # fmt: skip
        wednesday = _entry(here, kind, WEDNESDAY)
        thursday = _entry(here, kind, THURSDAY)
        elsewhere_wednesday = _entry(elsewhere, other_kind, WEDNESDAY)
        with opened_changes() as seen:
            at_here.end_date = WEDNESDAY
            at_here.save()  # Thursday given back, at this location only
        assert [(pk, opened.freed) for pk, opened in seen] == [
            (here.pk, ((f.local(THURSDAY, 0), f.local(THURSDAY + timedelta(days=1), 0)),))
        ]
        offers = _offer_opened(seen)
        assert [(o.entry_id, o.start) for o in offers] == [(thursday.pk, f.local(THURSDAY, 9))]
        with opened_changes() as seen:
            clinic_wide.delete()  # Wednesday open for everyone but this location's repairs
        assert {pk for pk, _ in seen} == {here.pk, elsewhere.pk}
        offers = _offer_opened(seen)
        assert [(o.entry_id, o.start) for o in offers] == [
            (elsewhere_wednesday.pk, f.local(WEDNESDAY, 9))
        ]
        with opened_changes() as seen:
            at_here.delete()
        offers = _offer_opened(seen)
        assert [(o.entry_id, o.start) for o in offers] == [(wednesday.pk, f.local(WEDNESDAY, 9))]
        with opened_changes() as seen:  # closing more opens nothing
            Closure.objects.create(name="Flood", start_date=WEDNESDAY, end_date=THURSDAY)
            widened = Closure.objects.create(name="Works", start_date=THURSDAY, end_date=THURSDAY)
            widened.start_date = WEDNESDAY
            widened.save()
        assert seen == []


def test_a_change_outside_every_range_or_wish_offers_nothing(acme):
    with in_clinic(acme), time_machine.travel(NOW):
        practitioner = f.practitioner(weekdays=WEEKDAYS)
        kind = f.appointment_type(practitioner, minutes=60)
        mornings = _entry(practitioner, kind, SATURDAY, preferred_end_time=time(12))
        not_saturdays = _entry(
            practitioner, kind, SATURDAY, latest_date=SATURDAY + timedelta(days=1),
            preferred_weekdays=[6],
        )  # fmt: skip
        location = practitioner.locations.get()
        with opened_changes() as seen:
            # Saturday evening: in their dates, not in their wishes
            WorkingHours.objects.create(
                practitioner=practitioner, weekday=5, start_time=time(17), end_time=time(20),
                location=location,
            )  # fmt: skip
            # a Monday-to-Friday afternoon only past every entry's last day
            WorkingHours.objects.create(
                practitioner=practitioner, weekday=0, start_time=time(17), end_time=time(19),
                location=location, effective_from=SATURDAY + timedelta(days=2),
            )  # fmt: skip
            # time off taken and hours narrowed open nothing: no signal
            TimeOff.objects.create(
                practitioner=practitioner, start=f.local(SATURDAY, 17), end=f.local(SATURDAY, 18)
            )
            monday = WorkingHours.objects.get(
                practitioner=practitioner, weekday=0, start_time=time(9)
            )
            monday.end_time = time(12)
            monday.save()
        assert len(seen) == 2
        assert services.opened_spans(
            practitioner_id=practitioner.pk, opened=seen[1][1], now=NOW
        ) == []  # fmt: skip
        assert _offer_opened(seen) == []
        assert not WaitlistOffer.objects.exists()
        for entry in (mornings, not_saturdays):
            entry.refresh_from_db()
            assert entry.status == "waiting"


def test_hours_added_where_a_visit_is_booked_offer_only_the_free_slots(acme):
    with in_clinic(acme), time_machine.travel(NOW):
        practitioner = f.practitioner(weekdays=(*WEEKDAYS, 5))
        kind = f.appointment_type(practitioner, minutes=60)
        scheduling.appointment_book(
            patient=f.patient(), practitioner=practitioner, appointment_type=kind,
            start=f.local(SATURDAY, 10),
        )  # fmt: skip
        saturday = WorkingHours.objects.get(practitioner=practitioner, weekday=5)
        location = saturday.location
        entries = [_entry(practitioner, kind, SATURDAY) for _ in range(3)]
        with opened_changes() as seen:
            saturday.delete()  # the hours replaced: the booked visit stays
            WorkingHours.objects.create(
                practitioner=practitioner, weekday=5, start_time=time(9), end_time=time(12),
                location=location,
            )  # fmt: skip
        offers = _offer_opened(seen)
        assert [(o.entry_id, o.start) for o in offers] == [
            (entries[0].pk, f.local(SATURDAY, 9)),
            (entries[1].pk, f.local(SATURDAY, 11)),
        ]
        entries[2].refresh_from_db()
        assert entries[2].status == "waiting"


def test_a_held_slot_is_not_offered_twice_and_an_entry_holds_one_offer(acme):
    with in_clinic(acme), time_machine.travel(NOW):
        practitioner = f.practitioner(weekdays=WEEKDAYS)
        kind = f.appointment_type(practitioner, minutes=60)
        first, second = (_entry(practitioner, kind, SATURDAY) for _ in range(2))
        with opened_changes() as seen:
            WorkingHours.objects.create(
                practitioner=practitioner, weekday=5, start_time=time(9), end_time=time(11),
                location=practitioner.locations.get(),
            )  # fmt: skip
        assert _starts(_offer_opened(seen)) == [f.local(SATURDAY, 9), f.local(SATURDAY, 10)]
        # the same task again (a redelivery) or a later entry: the slots are held, once
        late = _entry(practitioner, kind, SATURDAY)
        assert _offer_opened(seen) == []
        assert WaitlistOffer.objects.filter(entry=first).count() == 1
        assert WaitlistOffer.objects.filter(entry=second).count() == 1
        late.refresh_from_db()
        assert late.status == "waiting"
        # the first declines: their slot passes to the late entry, not back to them
        services.offer_decline(offer=WaitlistOffer.objects.get(entry=first), now=NOW)
        offer = services.slot_offer(
            slot=services.FreedSlot(
                practitioner.pk, f.local(SATURDAY, 9), f.local(SATURDAY, 9),
                f.local(SATURDAY, 10),
            ),
            now=NOW,
        )  # fmt: skip
        assert offer is not None and offer.entry_id == late.pk
