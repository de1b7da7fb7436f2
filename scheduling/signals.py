"""Signals scheduling sends for apps above it that react to a visit's changes without being
imported by it (notifications, webhooks, billing's no-show and late-cancel fees).

`appointment_changed` is sent by `services._record`, inside the service's transaction, after
the change and its event row are written: a receiver's writes commit or roll back with the
change itself, and a receiver's error fails the change (receivers queue their side effects with
`transaction.on_commit`). Keyword arguments:

- `appointment`: the Appointment as saved (status, start, practitioner, location current);
- `kind`: "booked", "cancelled", "rescheduled", "checked_in", "completed", "no_show" or
  "no_show_undone";
- `by`: the user who made the change, or None (a job, the system);
- `data`: the event's data ("previous" start / end / practitioner for a move, "reason" and
  "late" for a cancel, "source" for a booking).

`schedule_opened` is sent when a practitioner's working hours are added or widened (created,
or changed so that they cover more), a time off is removed or shortened (deleted, or changed
so that it covers less), or a closure is removed, shortened or moved to another location (once
for each practitioner it kept from work: every active one for a whole-clinic closure, those with
hours at the location for a location's; the days it gave back, midnight to midnight on each
practitioner's clock), by any writer that saves the models (the API, the admin, a service):
from the models' own save and delete signals (`connect`, below), inside the change's
transaction, so a receiver queues its work with `transaction.on_commit`. Keyword arguments:
`practitioner_id`, and `opened`, an `OpenedTime` whose `spans(start, end)` are the instants
that became working time between `start` and `end` (the opened time, whether or not visits or
other time off take it: availability says what of it is free). Hours narrowed, time off
added or lengthened and closures added or lengthened send nothing (they open nothing).

`smart_booking_finished` is sent by `smart.job` when a job ends `completed` or `failed`, inside
the transaction that saves that status (for webhooks). Keyword argument: `job`, the
SmartBookingJob as saved.

Model save signals carry no business rules; these are the contract.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import Signal

appointment_changed = Signal()
schedule_opened = Signal()
smart_booking_finished = Signal()

Span = tuple[datetime, datetime]


def spans_minus(spans: list[Span], taken: list[Span]) -> list[Span]:
    """The parts of `spans` outside every one of `taken` (half-open intervals), sorted."""
    left: list[Span] = []
    for lo, hi in sorted(spans):
        pieces = [(lo, hi)]
        for t_lo, t_hi in taken:
            pieces = [
                piece
                for p_lo, p_hi in pieces
                for piece in ((p_lo, min(p_hi, t_lo)), (max(p_lo, t_hi), p_hi))
                if piece[0] < piece[1]
            ]
        left += pieces
    return sorted(left)


@dataclass(frozen=True)
class OpenedTime:
    """Time a change gave a practitioner: weekly `hours` (as saved) beyond the blocks that
    already worked (`hours_before`, expanded in the practitioner's `zone`), or the instants
    `freed` of a time off removed or shortened."""

    zone: str = "UTC"
    hours: tuple = ()  # WorkingHours rows (saved or in memory)
    hours_before: tuple = ()
    freed: tuple[Span, ...] = ()

    def spans(self, start: datetime, end: datetime) -> list[Span]:
        """The opened instants within [start, end), sorted."""
        from .availability import working_blocks

        def blocks(rows) -> list[Span]:
            zone = ZoneInfo(self.zone)
            found = working_blocks(rows, tz=zone, start=start, end=end)
            return [(max(lo, start), min(hi, end)) for lo, hi, _ in found]

        # hours without a location serve no in-person visit: they do not cover located ones
        located = any(row.location_id is not None for row in self.hours)
        before = [row for row in self.hours_before if row.location_id or not located]
        opened = spans_minus(blocks(self.hours), blocks(before)) if self.hours else []
        opened += [(max(lo, start), min(hi, end)) for lo, hi in self.freed]
        return sorted(span for span in opened if span[0] < span[1])


def _hours_cover(before, after) -> bool:
    """Whether the weekly block `before` covered all of `after` (a change that opens nothing)."""
    return (
        before.practitioner_id == after.practitioner_id
        and before.weekday == after.weekday
        and before.start_time <= after.start_time
        and after.end_time <= before.end_time
        and (before.location_id == after.location_id or after.location_id is None)
        and (before.effective_from is None or (
            after.effective_from is not None and before.effective_from <= after.effective_from
        ))
        and (before.effective_to is None or (
            after.effective_to is not None and after.effective_to <= before.effective_to
        ))
    )  # fmt: skip


def _remember(sender, instance, raw=False, **kwargs) -> None:
    """Before an hours or time off row is changed: its stored version, to compare."""
    if raw or instance._state.adding or not schedule_opened.has_listeners():
        return
    instance._schedule_before = sender.objects.filter(pk=instance.pk).first()


def _hours_saved(sender, instance, created, raw=False, **kwargs) -> None:
    before = instance.__dict__.pop("_schedule_before", None)
    if raw or not schedule_opened.has_listeners():
        return
    if before is not None and _hours_cover(before, instance):
        return  # unchanged or narrowed
    from practice.models import Practitioner

    kept = list(sender.objects.filter(practitioner_id=instance.practitioner_id).exclude(
        pk=instance.pk
    ))  # fmt: skip
    if before is not None and before.practitioner_id == instance.practitioner_id:
        kept.append(before)
    zone = (
        Practitioner.objects.filter(pk=instance.practitioner_id)
        .values_list("timezone", flat=True)
        .first()
    )
    opened = OpenedTime(zone=zone or "UTC", hours=(instance,), hours_before=tuple(kept))
    schedule_opened.send(sender=sender, practitioner_id=instance.practitioner_id, opened=opened)


def _time_off_saved(sender, instance, created, raw=False, **kwargs) -> None:
    before = instance.__dict__.pop("_schedule_before", None)
    if raw or before is None or not schedule_opened.has_listeners():
        return
    still_off = [(instance.start, instance.end)]
    if before.practitioner_id != instance.practitioner_id:
        still_off = []  # moved to someone else: the whole of it is given back
    if freed := spans_minus([(before.start, before.end)], still_off):
        opened = OpenedTime(freed=tuple(freed))
        schedule_opened.send(sender=sender, practitioner_id=before.practitioner_id, opened=opened)


def _time_off_deleted(sender, instance, **kwargs) -> None:
    if schedule_opened.has_listeners():
        opened = OpenedTime(freed=((instance.start, instance.end),))
        schedule_opened.send(sender=sender, practitioner_id=instance.practitioner_id, opened=opened)


def _closure_practitioners(location_id: int | None) -> list[tuple[int, str]]:
    """(id, zone) of the practitioners a closure of `location_id` (None: the whole clinic)
    keeps from work."""
    from practice.models import Practitioner

    from .models import WorkingHours

    practitioners = Practitioner.objects.filter(is_active=True)
    if location_id is not None:
        at = WorkingHours.objects.filter(location_id=location_id).values("practitioner_id")
        practitioners = practitioners.filter(pk__in=at)
    return list(practitioners.values_list("pk", "timezone"))


def _days(start: date, end: date) -> set[date]:
    return {start + timedelta(days=n) for n in range((end - start).days + 1)}


def _closure_opened(before, after) -> None:
    """What a closure changed or deleted (`after` None) gave back: its days no longer closed
    for the practitioners it covered, as OpenedTime per practitioner."""
    days = _days(before.start_date, before.end_date)
    if after is not None and after.location_id == before.location_id:
        days -= _days(after.start_date, after.end_date)
    elif after is not None and after.location_id is None:
        days = set()  # now the whole clinic: closed wider, nothing given back
    if not days:
        return
    runs: list[tuple[date, date]] = []  # consecutive days, each [first, day after last)
    for day in sorted(days):
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + timedelta(days=1))
        else:
            runs.append((day, day + timedelta(days=1)))
    for practitioner_id, zone_name in _closure_practitioners(before.location_id):
        zone = ZoneInfo(zone_name or "UTC")
        freed = tuple(
            (datetime.combine(lo, time(0), zone), datetime.combine(hi, time(0), zone))
            for lo, hi in runs
        )
        opened = OpenedTime(zone=zone_name or "UTC", freed=freed)
        schedule_opened.send(sender=type(before), practitioner_id=practitioner_id, opened=opened)


def _closure_saved(sender, instance, created, raw=False, **kwargs) -> None:
    before = instance.__dict__.pop("_schedule_before", None)
    if raw or before is None or not schedule_opened.has_listeners():
        return
    _closure_opened(before, instance)


def _closure_deleted(sender, instance, **kwargs) -> None:
    if schedule_opened.has_listeners():
        _closure_opened(instance, None)


def connect() -> None:
    """Send `schedule_opened` from the hours', time off's and closures' saves and deletes
    (from `SchedulingConfig.ready`)."""
    from .models import Closure, TimeOff, WorkingHours

    for model in (WorkingHours, TimeOff, Closure):
        pre_save.connect(_remember, sender=model, dispatch_uid="opened")
    post_save.connect(_hours_saved, sender=WorkingHours, dispatch_uid="opened")
    post_save.connect(_time_off_saved, sender=TimeOff, dispatch_uid="opened")
    post_delete.connect(_time_off_deleted, sender=TimeOff, dispatch_uid="opened")
    post_save.connect(_closure_saved, sender=Closure, dispatch_uid="opened")
    post_delete.connect(_closure_deleted, sender=Closure, dispatch_uid="opened")
