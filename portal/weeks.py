"""What the slot pickers and option lists show: free times grouped into the viewer's days,
with the link each one leads to. Presentation only; the free times come from
`scheduling.availability.availability`."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.utils import timezone

from clinic.inputs import schedule_date_error
from practice.models import Practitioner
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
) -> dict:
    """Seven days of free slots from `first_day` (in the active zone, the viewer's), each slot
    with the link `link(slot)` leads to; when the week is empty, the first free day after it.
    `keep` holds the query parameters the week's own links carry (the visit type)."""
    zone = timezone.get_current_timezone()
    today = timezone.localdate()
    first_day = max(first_day, today)
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    end = datetime.combine(first_day + timedelta(days=WEEK), time.min, tzinfo=zone)
    results = availability(
        appointment_type=appointment_type,
        start=start,
        end=end,
        practitioner_ids=[practitioner.pk],
        exclude_appointment_id=exclude_appointment_id,
    )
    days = [
        {"date": first_day + timedelta(days=offset), "slots": [], "more": []}
        for offset in range(WEEK)
    ]
    for slot in results[0].slots if results else []:
        index = (slot.start.astimezone(zone).date() - first_day).days
        if 0 <= index < WEEK:
            day = days[index]
            entry = Option(slot.start, link(slot))
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
            limit_per_practitioner=1,
            exclude_appointment_id=exclude_appointment_id,
        )
        if later and later[0].slots:
            week["next_free"] = later[0].slots[0].start.astimezone(zone).date()
    week.update(
        keep=keep,
        previous_url=page(week["previous"]),
        next_url=page(week["next"]),
        next_free_url=page(week["next_free"]),
        today_url=page(today) if first_day != today else None,
    )
    return week
