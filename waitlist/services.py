"""Waitlist writes: add and withdraw entries; offer a freed slot (a visit cancelled or moved
away) and the free slots of time that opened (working hours added or widened, time off removed
or shortened); accept, decline and expire offers. Each function owns its transaction.

The order of offers (documented in the README): among the waiting entries whose wishes the
freed slot meets (its practitioner, or any practitioner of the entry's specialty who offers the
entry's visit type; the slot's day within the entry's dates and on a preferred weekday; the
visit inside the preferred times, by the practitioner's wall clock; the entry's visit with its
buffers inside the freed time), the **earliest created** is offered it first, then the next.
An entry is offered one slot once; one its patient could not book (notice, horizon, hours,
authorization) is passed over.

A hold is a `WaitlistOffer` row in status `held`: the database refuses another patient's
visit on it until `expires_at` and refuses a hold over a visit (models.py). It ends accepted
(booked through scheduling's booking service, under the offer's row lock: of any number of
accepts one books), declined, or expired (its own Celery task at `expires_at`; the beat's
sweep for a crashed worker), and then the slot passes to the next entry.
"""

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from authorizations import selectors as auth_selectors
from clinic.api import clinic_data_changed
from clinic.errors import ApplicationError
from clinic.inputs import schedule_date_error
from notifications.models import Kind as NotificationKind
from notifications.planning import subject_notices_write
from practice.models import ClinicSettings, Patient, Practitioner, Specialty
from realtime.groups import group_name, publish
from scheduling import availability
from scheduling import services as scheduling
from scheduling.booking_rules import slot_validate
from scheduling.models import Appointment, AppointmentType
from scheduling.signals import OpenedTime
from scheduling.smart.scoring import units_of
from tenants.selectors import schemas_where
from webhooks.services import events_emit

from .consumers import patient_group
from .errors import EntryRefusedError, OfferClosedError
from .messages import offer_about
from .models import WaitlistEntry, WaitlistOffer

Held = WaitlistOffer.Status


# --- Entries ----------------------------------------------------------------------------------


def authorization_note(*, patient: Patient, appointment_type: AppointmentType) -> str:
    """What the patient's authorizations say about visits of this type, where the clinic
    refuses visits without one: "" when nothing stands in the way."""
    code = appointment_type.service_code
    if code is None or not code.requires_authorization:
        return ""
    if ClinicSettings.load().authorization_policy != ClinicSettings.AuthorizationPolicy.REFUSE:
        return ""
    need = auth_selectors.authorization_need(
        patient=patient,
        service_code=code,
        units=units_of(appointment_type),
        today=timezone.localdate(),
    )
    if need.state == "exhausted":
        return (
            f"{appointment_type.name} needs {need.units} authorized unit(s) and the patient's "
            f"authorizations have {need.units_left} left: no slot can be booked until it is "
            "renewed."
        )
    if need.state == "none":
        return (
            f"{appointment_type.name} needs an authorization from the patient's insurer and "
            "there is none yet: no slot can be booked until one is approved."
        )
    return ""


def entry_check(
    *,
    appointment_type: AppointmentType,
    earliest_date: date,
    latest_date: date,
    practitioner: Practitioner | None = None,
    specialty: Specialty | None = None,
    preferred_start_time: time | None = None,
    preferred_end_time: time | None = None,
) -> None:
    """The rules of a new entry (EntryRefusedError naming the field); the admin's form asks
    them too."""
    for field, day in (("earliest_date", earliest_date), ("latest_date", latest_date)):
        if message := schedule_date_error(day):
            raise EntryRefusedError(message, field=field)
    if latest_date < earliest_date:
        raise EntryRefusedError("The last day comes before the first.", field="latest_date")
    if latest_date < timezone.localdate():
        raise EntryRefusedError("The last day has passed.", field="latest_date")
    if practitioner is None and specialty is None:
        raise EntryRefusedError("Name a practitioner or a specialty.", field="practitioner")
    if (
        practitioner is not None
        and not appointment_type.practitioners.filter(pk=practitioner.pk).exists()
    ):
        raise EntryRefusedError(
            f"{practitioner.display_name} does not offer {appointment_type.name}.",
            field="practitioner",
        )
    if (
        practitioner is None
        and specialty is not None
        and not appointment_type.practitioners.filter(specialties=specialty).exists()
    ):
        raise EntryRefusedError(
            f"No practitioner of {specialty.name} offers {appointment_type.name}.",
            field="specialty",
        )
    if not appointment_type.is_active:
        raise EntryRefusedError(
            f"{appointment_type.name} is not offered.", field="appointment_type"
        )
    if (
        preferred_start_time is not None
        and preferred_end_time is not None
        and preferred_end_time <= preferred_start_time
    ):
        raise EntryRefusedError(
            "The latest end comes before the earliest start.", field="preferred_end_time"
        )


@transaction.atomic
def entry_create(
    *,
    patient: Patient,
    appointment_type: AppointmentType,
    earliest_date: date,
    latest_date: date,
    practitioner: Practitioner | None = None,
    specialty: Specialty | None = None,
    preferred_weekdays: list[int] | None = None,
    preferred_start_time: time | None = None,
    preferred_end_time: time | None = None,
    notes: str = "",
    created_by=None,
) -> WaitlistEntry:
    """Put `patient` on the waitlist. Refuses (422 naming the field) a practitioner who does
    not offer the type, a specialty none of whose practitioners do, dates out of order or
    past. An entry the patient's authorization cannot cover is kept, and says so in its
    `authorization_note` (it is passed over until the authorization allows a booking)."""
    entry_check(
        appointment_type=appointment_type,
        earliest_date=earliest_date,
        latest_date=latest_date,
        practitioner=practitioner,
        specialty=specialty,
        preferred_start_time=preferred_start_time,
        preferred_end_time=preferred_end_time,
    )
    return WaitlistEntry.objects.create(
        patient=patient,
        practitioner=practitioner,
        specialty=specialty,
        appointment_type=appointment_type,
        earliest_date=earliest_date,
        latest_date=latest_date,
        preferred_weekdays=sorted(set(preferred_weekdays or ())),
        preferred_start_time=preferred_start_time,
        preferred_end_time=preferred_end_time,
        notes=notes,
        created_by=created_by,
        authorization_note=authorization_note(patient=patient, appointment_type=appointment_type),
    )


@transaction.atomic
def entry_cancel(*, entry: WaitlistEntry, now: datetime | None = None) -> WaitlistEntry:
    """Take an entry off the waitlist; a hold it has is withdrawn and passes on."""
    now = now or timezone.now()
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status in (WaitlistEntry.Status.BOOKED, WaitlistEntry.Status.CANCELLED):
        return entry
    held = WaitlistOffer.objects.select_for_update().filter(entry=entry, status=Held.HELD).first()
    entry.status = WaitlistEntry.Status.CANCELLED
    entry.save(update_fields=["status", "updated_at"])
    if held is not None:
        _close(held, Held.WITHDRAWN, now=now)
    return entry


# --- Offering a freed slot ----------------------------------------------------------------------


@dataclass(frozen=True)
class FreedSlot:
    """Time a cancellation or a move gave back: `practitioner`'s [lo, hi) (buffers included),
    whose visit began at `start`; or a free slot of time that opened (`freed_by_id` None)."""

    practitioner_id: int
    start: datetime
    lo: datetime
    hi: datetime
    freed_by_id: int | None = None

    def as_task_args(self) -> list:
        return [self.practitioner_id, self.start.isoformat(), self.lo.isoformat(),
                self.hi.isoformat(), self.freed_by_id]  # fmt: skip

    @classmethod
    def from_task_args(cls, args: list) -> "FreedSlot":
        practitioner_id, start, lo, hi, freed_by_id = args
        return cls(
            practitioner_id,
            datetime.fromisoformat(start),
            datetime.fromisoformat(lo),
            datetime.fromisoformat(hi),
            freed_by_id,
        )


def freed_slot_of(appointment: Appointment, kind: str, data: dict) -> FreedSlot | None:
    """The time a scheduling change gave back (a cancellation, a move away), or None."""
    if kind == "cancelled":
        return FreedSlot(
            appointment.practitioner_id,
            appointment.start,
            appointment.blocked.lower,
            appointment.blocked.upper,
            appointment.pk,
        )
    previous = data.get("previous") or {}
    if kind == "rescheduled" and previous:
        start, end = (datetime.fromisoformat(previous[k]) for k in ("start", "end"))
        lo, hi = availability.blocked_bounds(appointment.appointment_type, start, end)
        return FreedSlot(previous["practitioner"], start, lo, hi, appointment.pk)
    return None


def _fits(entry: WaitlistEntry, slot: FreedSlot, zone: ZoneInfo) -> bool:
    kind = entry.appointment_type
    end = slot.start + timedelta(minutes=kind.duration_minutes)
    lo, hi = availability.blocked_bounds(kind, slot.start, end)
    if lo < slot.lo or hi > slot.hi:
        return False
    local_start, local_end = slot.start.astimezone(zone), end.astimezone(zone)
    if not entry.earliest_date <= local_start.date() <= entry.latest_date:
        return False
    if entry.preferred_weekdays and local_start.weekday() not in entry.preferred_weekdays:
        return False
    if entry.preferred_start_time and local_start.time() < entry.preferred_start_time:
        return False
    if entry.preferred_end_time and (
        local_end.date() > local_start.date() or local_end.time() > entry.preferred_end_time
    ):
        return False
    return True


def _bookable(entry: WaitlistEntry, practitioner: Practitioner, start: datetime, now) -> bool:
    """Whether the entry's patient could book this slot themselves (every booking rule but the
    overlap, and the authorization where the clinic requires one)."""
    if authorization_note(patient=entry.patient, appointment_type=entry.appointment_type):
        return False
    try:
        slot_validate(
            patient=entry.patient,
            practitioner=practitioner,
            appointment_type=entry.appointment_type,
            start=start,
            now=now,
            staff=False,
        )
    except ApplicationError:
        return False
    return True


def _waiting_for(practitioner: Practitioner):
    """Waiting entries `practitioner` could see: theirs, or any of their specialty, for a visit
    type they offer."""
    return WaitlistEntry.objects.filter(
        status=WaitlistEntry.Status.WAITING,
        appointment_type__practitioners=practitioner,
        appointment_type__is_active=True,
    ).filter(
        Q(practitioner=practitioner)
        | Q(practitioner__isnull=True, specialty__in=practitioner.specialties.all())
    )


def candidates_for(slot: FreedSlot, *, now: datetime) -> list[WaitlistEntry]:
    """The waiting entries the slot meets, in the order they are offered it (earliest created
    first), leaving out entries already offered this slot."""
    practitioner = Practitioner.objects.filter(pk=slot.practitioner_id, is_active=True).first()
    if practitioner is None:
        return []
    zone = ZoneInfo(practitioner.timezone)
    day = slot.start.astimezone(zone).date()
    offered_here = WaitlistOffer.objects.filter(
        practitioner_id=slot.practitioner_id, start=slot.start
    ).values("entry_id")
    entries = (
        _waiting_for(practitioner)
        .filter(earliest_date__lte=day, latest_date__gte=day)
        .exclude(pk__in=offered_here)
        .select_related("patient", "appointment_type")
        .order_by("created_at", "id")
        .distinct()
    )
    return [
        entry
        for entry in entries
        if _fits(entry, slot, zone) and _bookable(entry, practitioner, slot.start, now)
    ]


def slot_offer(*, slot: FreedSlot, now: datetime | None = None) -> WaitlistOffer | None:
    """Offer a freed slot to the first candidate that can still take it: hold it for them for
    the clinic's `waitlist_hold_minutes`. None when nobody on the waitlist wants it, or the
    slot is no longer free (booked meanwhile: the hold's trigger refuses it)."""
    now = now or timezone.now()
    for entry in candidates_for(slot, now=now):
        offer = _hold(entry, slot, now=now)
        if offer is not None:
            return offer
        if not _slot_still_free(slot):
            return None
    return None


def _slot_still_free(slot: FreedSlot) -> bool:
    return (
        not Appointment.objects.filter(
            practitioner_id=slot.practitioner_id,
            status__in=("booked", "checked_in", "completed"),
            overbooked=False,
            blocked__overlap=(slot.lo, slot.hi),
        ).exists()
        and not WaitlistOffer.objects.filter(
            practitioner_id=slot.practitioner_id,
            status=Held.HELD,
            blocked__overlap=(slot.lo, slot.hi),
        ).exists()
    )


@transaction.atomic
def _hold(entry: WaitlistEntry, slot: FreedSlot, *, now: datetime) -> WaitlistOffer | None:
    locked = WaitlistEntry.objects.select_for_update().filter(
        pk=entry.pk, status=WaitlistEntry.Status.WAITING
    )
    if not locked.exists():
        return None  # taken off, or offered another slot meanwhile
    kind = entry.appointment_type
    end = slot.start + timedelta(minutes=kind.duration_minutes)
    minutes = ClinicSettings.load().waitlist_hold_minutes
    offer = WaitlistOffer(
        entry=entry,
        patient_id=entry.patient_id,
        practitioner_id=slot.practitioner_id,
        appointment_type=kind,
        start=slot.start,
        end=end,
        blocked=availability.blocked_range(kind, slot.start, end),
        expires_at=now + timedelta(minutes=minutes),
        freed_by_id=slot.freed_by_id,
    )
    try:
        with transaction.atomic():
            offer.save()
    except IntegrityError:
        # taken by a visit (waitlist_offer_over_visit) or held for another entry (the
        # exclusion constraint): the slot is not free, nobody is offered it
        return None
    WaitlistEntry.objects.filter(pk=entry.pk).update(
        status=WaitlistEntry.Status.OFFERED, updated_at=now
    )
    clinic_data_changed()  # cached availability answers must leave the held slot out
    _tell_integrators(offer, "waitlist.offer_sent")
    # the offer's message, one row per channel, in the hold's transaction; sent after commit
    subject_notices_write(
        kind=NotificationKind.WAITLIST_OFFER,
        about=offer_about(offer),
        patient=entry.patient,
        start=offer.start,
        now=now,
    )
    transaction.on_commit(lambda: _announce(offer.pk, "waitlist.held"), robust=True)
    return offer


# --- Offering time that opened: hours added or widened, time off removed or shortened ----------

# One change of hours or time off makes at most this many offers, from the earliest of at most
# this many opened spans: the task stays bounded whatever the change and the waitlist.
OPENED_OFFERS_MAX = 20
OPENED_SPANS_MAX = 200

Span = tuple[datetime, datetime]


def opened_spans(
    *, practitioner_id: int, opened: OpenedTime, now: datetime | None = None
) -> list[Span]:
    """What of the time a change opened (`scheduling.signals.schedule_opened`) the waitlist
    could want: from now to the end of the widest dates of the entries waiting for this
    practitioner, no further than the longest horizon of their visit types; the earliest
    `OPENED_SPANS_MAX` spans. [] when nobody waits (then nothing is queued). Run in the
    change's transaction, by the receiver: three small queries and interval arithmetic."""
    now = now or timezone.now()
    practitioner = Practitioner.objects.filter(pk=practitioner_id, is_active=True).first()
    if practitioner is None:
        return []
    zone = ZoneInfo(practitioner.timezone)
    bounds = (
        _waiting_for(practitioner)
        .filter(latest_date__gte=now.astimezone(zone).date())
        .aggregate(
            first=Min("earliest_date"),
            last=Max("latest_date"),
            horizon=Max("appointment_type__horizon_days"),
        )
    )
    if bounds["last"] is None:
        return []
    start = max(now, datetime.combine(bounds["first"], time(), tzinfo=zone))
    end = min(
        datetime.combine(bounds["last"] + timedelta(days=1), time(), tzinfo=zone),
        now + timedelta(days=bounds["horizon"] + 1),
    )
    if end <= start:
        return []
    return opened.spans(start, end)[:OPENED_SPANS_MAX]


def _merged(spans: list[Span]) -> tuple[list[datetime], list[datetime]]:
    lows: list[datetime] = []
    highs: list[datetime] = []
    for lo, hi in sorted(spans):
        if highs and lo <= highs[-1]:
            highs[-1] = max(highs[-1], hi)
        else:
            lows.append(lo)
            highs.append(hi)
    return lows, highs


def _opened_slots(
    practitioner: Practitioner, kind: AppointmentType, spans: list[Span], now: datetime
) -> list[FreedSlot]:
    """The free slots of `kind` with `practitioner` (availability, as booking reads it: visits,
    holds, time off, closures, notice, horizon) whose visit touches the opened `spans`."""
    lows, highs = _merged(spans)
    duration = timedelta(minutes=kind.duration_minutes)
    found = availability.availability(
        appointment_type=kind,
        start=lows[0] - duration,
        end=highs[-1] + duration,
        practitioner_ids=[practitioner.pk],
        now=now,
    )
    slots = []
    for free in (slot for result in found for slot in result.slots):
        index = bisect.bisect_left(lows, free.end) - 1  # the last span starting before its end
        if index >= 0 and highs[index] > free.start:
            lo, hi = availability.blocked_bounds(kind, free.start, free.end)
            slots.append(FreedSlot(practitioner.pk, free.start, lo, hi))
    return slots


def opened_time_offer(
    *, practitioner_id: int, spans: list[Span], now: datetime | None = None
) -> list[WaitlistOffer]:
    """Offer the free slots of time that opened (`opened_spans`) to the waitlist: the entries
    waiting for this practitioner, earliest created first, are each offered the earliest free
    slot in that time that meets their wishes, through `slot_offer` (so a slot goes to the
    earliest created entry it meets, is held once, and an entry holds one offer at a time); at
    most `OPENED_OFFERS_MAX` offers."""
    now = now or timezone.now()
    practitioner = Practitioner.objects.filter(pk=practitioner_id, is_active=True).first()
    if practitioner is None or not spans:
        return []
    zone = ZoneInfo(practitioner.timezone)
    first_day = min(lo for lo, _ in spans).astimezone(zone).date()
    last_day = max(hi for _, hi in spans).astimezone(zone).date()
    entries = (
        _waiting_for(practitioner)
        .filter(earliest_date__lte=last_day, latest_date__gte=first_day)
        .select_related("patient", "appointment_type")
        .order_by("created_at", "id")
        .distinct()
    )
    free: dict[int, list[FreedSlot]] = {}
    held: list[Span] = []
    offers: list[WaitlistOffer] = []
    for entry in entries:
        if len(offers) >= OPENED_OFFERS_MAX:
            break
        kind = entry.appointment_type
        if kind.pk not in free:
            free[kind.pk] = _opened_slots(practitioner, kind, spans, now)
        for slot in free[kind.pk]:
            if any(slot.lo < hi and lo < slot.hi for lo, hi in held):
                continue  # held by this task already
            if not (_fits(entry, slot, zone) and _bookable(entry, practitioner, slot.start, now)):
                continue
            offer = slot_offer(slot=slot, now=now)
            if offer is None:
                continue  # taken since (a booking, another hold)
            held.append((offer.blocked.lower, offer.blocked.upper))
            offers.append(offer)
            if offer.entry_id == entry.pk or len(offers) >= OPENED_OFFERS_MAX:
                break  # or it went to an earlier entry: this one tries the next slot
    return offers


# --- Deciding ---------------------------------------------------------------------------------


def _lock_offer(offer: WaitlistOffer) -> WaitlistOffer:
    return (
        WaitlistOffer.objects.select_for_update(of=("self",))
        .select_related("entry", "patient", "practitioner", "appointment_type")
        .get(pk=offer.pk)
    )


def _closed(offer: WaitlistOffer) -> OfferClosedError:
    if offer.status == Held.ACCEPTED:
        return OfferClosedError("This offer was accepted: the visit is booked.")
    if offer.status == Held.HELD:
        return OfferClosedError("This offer has expired; the time was offered to someone else.")
    return OfferClosedError(f"This offer was {offer.get_status_display().lower()}.")


@transaction.atomic
def offer_accept(*, offer: WaitlistOffer, by=None, now: datetime | None = None) -> Appointment:
    """Book the held slot for the offer's patient through scheduling's booking service (its
    rules, units and exclusion constraint). Under the offer's row lock: of any number of
    accepts at once, one books and the others are OfferClosedError (409). An expired offer is
    409 too. A slot booked by someone else since (the hold had expired) is the booking's 409."""
    now = now or timezone.now()
    offer = _lock_offer(offer)
    if offer.status != Held.HELD or offer.expires_at <= now:
        raise _closed(offer)
    patient = offer.patient
    appointment = scheduling.appointment_book(
        patient=patient,
        practitioner=offer.practitioner,
        appointment_type=offer.appointment_type,
        start=offer.start,
        booked_by=by if by is not None else patient.user,
        source=Appointment.Source.PORTAL,
        now=now,
    )
    offer.status, offer.appointment, offer.decided_at = Held.ACCEPTED, appointment, now
    offer.save(update_fields=["status", "appointment", "decided_at"])
    WaitlistEntry.objects.filter(pk=offer.entry_id).update(
        status=WaitlistEntry.Status.BOOKED, appointment=appointment, updated_at=now
    )
    _tell_integrators(offer, "waitlist.offer_accepted")
    transaction.on_commit(lambda: _announce(offer.pk, "waitlist.accepted"), robust=True)
    return appointment


@transaction.atomic
def offer_decline(*, offer: WaitlistOffer, now: datetime | None = None) -> WaitlistOffer:
    """The patient does not want this slot: their entry waits for the next one, and the slot
    passes to the next entry at once."""
    now = now or timezone.now()
    offer = _lock_offer(offer)
    if offer.status != Held.HELD:
        raise _closed(offer)
    return _close(offer, Held.DECLINED, now=now)


@transaction.atomic
def offer_expire(*, offer_id: int, now: datetime | None = None) -> bool:
    """End a hold whose time is up (its task, or the sweep) and pass the slot on; False when
    it was decided already or is not due yet."""
    now = now or timezone.now()
    offer = (
        WaitlistOffer.objects.select_for_update(skip_locked=True)
        .filter(pk=offer_id, status=Held.HELD, expires_at__lte=now)
        .first()
    )
    if offer is None:
        return False
    _close(offer, Held.EXPIRED, now=now)
    return True


def _close(offer: WaitlistOffer, status: str, *, now: datetime) -> WaitlistOffer:
    """End a held offer (declined, expired, withdrawn): the entry waits again (unless taken
    off) and, after commit, the slot is offered to the next entry."""
    offer.status, offer.decided_at = status, now
    offer.save(update_fields=["status", "decided_at"])
    if event := CLOSED_EVENTS.get(status):
        _tell_integrators(offer, event)
    clinic_data_changed()  # the slot is free again in cached availability answers
    WaitlistEntry.objects.filter(pk=offer.entry_id, status=WaitlistEntry.Status.OFFERED).update(
        status=WaitlistEntry.Status.WAITING, updated_at=now
    )
    slot = FreedSlot(
        offer.practitioner_id,
        offer.start,
        offer.blocked.lower,
        offer.blocked.upper,
        offer.freed_by_id,
    )
    if offer.freed_by_id is not None:
        # the whole time the visit freed, not just the part this offer's visit type took
        freed = Appointment.objects.filter(pk=offer.freed_by_id).first()
        if freed is not None and freed.start == offer.start:
            slot = FreedSlot(
                offer.practitioner_id, offer.start, freed.blocked.lower, freed.blocked.upper,
                freed.pk,
            )  # fmt: skip

    def after() -> None:
        _announce(offer.pk, "waitlist.released")
        from .tasks import offer_slot_task

        offer_slot_task.delay(slot.as_task_args())

    transaction.on_commit(after, robust=True)
    return offer


def clinics_with_offers_due(schemas: list[str], *, now: datetime | None = None) -> list[str]:
    """The schemas, of those given, holding an offer past its expiry: one query per 200
    clinics (the sweep every 30 s visits only those)."""
    table = WaitlistOffer._meta.db_table
    return schemas_where(
        schemas,
        table=table,
        sql=f"SELECT 1 FROM {{schema}}.{table} WHERE status = %s AND expires_at <= %s",  # noqa: S608
        params=[Held.HELD, now or timezone.now()],
    )


def offers_next_due() -> tuple[str, list]:
    """When a held offer of a clinic next expires, as SQL and its parameters for
    tenants.services.work_due_settle."""
    table = WaitlistOffer._meta.db_table
    return (
        f"SELECT min(expires_at) FROM {{schema}}.{table} WHERE status = %s",  # noqa: S608
        [Held.HELD],
    )


def offers_due(*, now: datetime | None = None) -> list[int]:
    """Held offers past their expiry (a crashed worker's): what the sweep expires."""
    now = now or timezone.now()
    return list(
        WaitlistOffer.objects.filter(status=Held.HELD, expires_at__lte=now).values_list(
            "pk", flat=True
        )[:500]
    )


# --- Telling the board and the integrators -----------------------------------------------------

# An offer withdrawn because its entry was taken off is no event: the entry's owner did it.
CLOSED_EVENTS: dict[str, str] = {
    Held.DECLINED: "waitlist.offer_declined",
    Held.EXPIRED: "waitlist.offer_expired",
}


def offer_data(offer: WaitlistOffer) -> dict:
    """The offer as `GET /api/v1/waitlist/offers/{id}/` shows it (the API's serializer is not
    imported here: the pages import these services, and never an app's API)."""

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

    return {
        "id": offer.pk,
        "entry": offer.entry_id,
        "patient": offer.patient_id,
        "practitioner": offer.practitioner_id,
        "appointment_type": offer.appointment_type_id,
        "start": iso(offer.start),
        "end": iso(offer.end),
        "status": offer.status,
        "expires_at": iso(offer.expires_at),
        "appointment": offer.appointment_id,
        "created_at": iso(offer.created_at),
        "decided_at": iso(offer.decided_at),
    }


def _tell_integrators(offer: WaitlistOffer, type_: str) -> None:
    """The clinic's webhook subscriptions to `type_` get `offer_data(offer)`, in this change's
    transaction, ordered per offer (built only when a subscription wants it)."""
    events_emit(type=type_, items=lambda: [(offer_data(offer), f"waitlist_offer:{offer.pk}")])


def offer_payload(offer: WaitlistOffer, kind: str) -> dict:
    return {
        "type": kind,
        "offer": {
            "id": offer.pk,
            "practitioner": offer.practitioner_id,
            "start": offer.start.isoformat(),
            "end": offer.end.isoformat(),
            "status": offer.status,
            "expires_at": offer.expires_at.isoformat(),
        },
    }


def _announce(offer_id: int, kind: str) -> None:
    """After commit: the schedule groups hear of the hold (the board shows held slots) and so
    does the patient's waitlist page (`/ws/waitlist/`), and the hold's expiry is queued when it
    begins (its message is a notification row, queued by notifications after the same commit)."""
    offer = WaitlistOffer.objects.get(pk=offer_id)
    publish(
        [
            group_name("schedule"),
            group_name("schedule", "practitioner", offer.practitioner_id),
            patient_group(offer.patient_id),  # the patient's waitlist page
        ],
        offer_payload(offer, kind),
    )
    if kind == "waitlist.held":
        from .tasks import expire_offer_task

        expire_offer_task.apply_async((offer_id,), eta=offer.expires_at)


UPDATABLE = frozenset(
    {"earliest_date", "latest_date", "preferred_weekdays", "preferred_start_time",
     "preferred_end_time", "notes"}
)  # fmt: skip


@transaction.atomic
def entry_update(*, entry: WaitlistEntry, **changes) -> WaitlistEntry:
    """Change a waiting entry's dates and wishes (422 naming the field as `entry_create`); an
    entry booked or taken off is 409."""
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status in (WaitlistEntry.Status.BOOKED, WaitlistEntry.Status.CANCELLED):
        raise OfferClosedError(f"This entry is {entry.get_status_display().lower()}.")
    for field, value in changes.items():
        if field not in UPDATABLE:
            raise EntryRefusedError("This cannot be changed; add a new entry.", field=field)
        setattr(entry, field, sorted(set(value)) if field == "preferred_weekdays" else value)
    for field in ("earliest_date", "latest_date"):
        if message := schedule_date_error(getattr(entry, field)):
            raise EntryRefusedError(message, field=field)
    if entry.latest_date < entry.earliest_date:
        raise EntryRefusedError("The last day comes before the first.", field="latest_date")
    start, end = entry.preferred_start_time, entry.preferred_end_time
    if start is not None and end is not None and end <= start:
        raise EntryRefusedError(
            "The latest end comes before the earliest start.", field="preferred_end_time"
        )
    entry.save()
    return entry
