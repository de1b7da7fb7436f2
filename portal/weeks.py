"""What the slot pickers and option lists show: free times grouped into the viewer's days,
with the link each one leads to. Presentation only; the free times come from
`scheduling.availability.availability`."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.utils import timezone

from clinic.inputs import schedule_date_error
from practice.models import Location, Practitioner
from scheduling.availability import availability
from scheduling.models import AppointmentType

WEEK = 7
SLOTS_SHOWN_PER_DAY = 8  # the rest of a day's times fold under "+N more"


@dataclass
class Option:
    """A free time offered to the patient (a slot, an alternative after a 409, a smart-booking
    job's nearest option)."""

    start: datetime
    url: str
    practitioner_name: str = ""
    # where an in-person slot is held, and that place's zone when it is not the viewer's
    location_name: str = ""
    location_zone: ZoneInfo | None = None


def options_from(items: list[dict], *, url_for) -> list[Option]:
    options = []
    for item in items:
        start = datetime.fromisoformat(item["start"])
        url = url_for(item, start)
        if url:
            options.append(Option(start, url, item.get("practitioner_name", "")))
    return options


def parse_day(value: str | None, default: date) -> date:
    """The day of a `?from=` link; `default` for a malformed one or a day far from today (year
    9999 or 1: the week after or before it does not exist)."""
    try:
        day = date.fromisoformat(value) if value else default
    except ValueError:
        return default
    return default if schedule_date_error(day) else day


def slot_week(
    *,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    first_day: date,
    link,
    keep: dict,
    exclude_appointment_id: int | None = None,
    bookable=None,
    location: Location | None = None,
) -> dict:
    """Seven days of free slots from `first_day` (in the active zone, the viewer's), each slot
    with the link `link(slot)` leads to; when the week is empty, the first free day after it.
    `keep` holds the query parameters the week's own links carry (the visit type).
    `bookable(slot)`, when given, keeps only the slots this patient can book (their
    authorization covers the day with units to spare). With `location`, only the slots held
    there (`keep` then carries `location` too). An in-person slot names its location, and
    that location's zone when it differs from the viewer's."""
    zone = timezone.get_current_timezone()
    today = timezone.localdate()
    location_id = location.pk if location is not None else None
    first_day = max(first_day, today)
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    end = datetime.combine(first_day + timedelta(days=WEEK), time.min, tzinfo=zone)
    results = availability(
        appointment_type=appointment_type,
        start=start,
        end=end,
        practitioner_ids=[practitioner.pk],
        location_id=location_id,
        exclude_appointment_id=exclude_appointment_id,
    )
    places = _places(appointment_type, results[0].slots if results else [], zone)
    days = [
        {"date": first_day + timedelta(days=offset), "slots": [], "more": []}
        for offset in range(WEEK)
    ]
    for slot in results[0].slots if results else []:
        if bookable is not None and not bookable(slot):
            continue
        index = (slot.start.astimezone(zone).date() - first_day).days
        if 0 <= index < WEEK:
            day = days[index]
            name, place_zone = places.get(slot.location_id, ("", None))
            entry = Option(slot.start, link(slot), location_name=name, location_zone=place_zone)
            (day["slots"] if len(day["slots"]) < SLOTS_SHOWN_PER_DAY else day["more"]).append(entry)
    horizon_day = (timezone.now() + timedelta(days=appointment_type.horizon_days)).astimezone(zone)
    week = {
        "days": days,
        "first_day": first_day,
        "last_day": first_day + timedelta(days=WEEK - 1),
        "previous": first_day - timedelta(days=WEEK) if first_day > today else None,
        "next": first_day + timedelta(days=WEEK)
        if first_day + timedelta(days=WEEK) <= horizon_day.date()
        else None,
        "empty": not any(day["slots"] for day in days),
        "next_free": None,
    }

    def page(day: date | None) -> str | None:
        return f"?{urlencode({**keep, 'from': day.isoformat()})}" if day else None

    if week["empty"]:
        later = availability(
            appointment_type=appointment_type,
            start=end,
            end=end + timedelta(days=appointment_type.horizon_days),
            practitioner_ids=[practitioner.pk],
            location_id=location_id,
            limit_per_practitioner=1 if bookable is None else 200,
            exclude_appointment_id=exclude_appointment_id,
        )
        free = [s for s in (later[0].slots if later else []) if bookable is None or bookable(s)]
        if free:
            week["next_free"] = free[0].start.astimezone(zone).date()
    everywhere = {k: v for k, v in keep.items() if k != "location"}
    week.update(
        location=location,
        all_locations_url=f"?{urlencode({**everywhere, 'from': first_day.isoformat()})}",
        keep=keep,
        previous_url=page(week["previous"]),
        next_url=page(week["next"]),
        next_free_url=page(week["next_free"]),
        today_url=page(today) if first_day != today else None,
    )
    return week


def _places(kind: AppointmentType, slots, viewer: object) -> dict:
    """location id -> (name, zone or None when it is the viewer's) of the slots' locations (one
    query). Video-only visit types are held nowhere: nothing to name."""
    if kind.mode == AppointmentType.Mode.TELEHEALTH:
        return {}
    ids = {slot.location_id for slot in slots if slot.location_id is not None}
    if not ids:
        return {}
    viewer_key = getattr(viewer, "key", str(viewer))
    return {
        pk: (name, None if tz == viewer_key else ZoneInfo(tz))
        for pk, name, tz in Location.objects.filter(pk__in=ids).values_list(
            "pk", "name", "timezone"
        )
    }
