"""Which messages a visit's change calls for, written as rows in the change's transaction.

`appointment_notices_write` is called (through `receivers`) inside the scheduling service's
transaction: a booking writes its confirmation and plans its reminders, a move writes a change
notice, skips the reminders planned for the old start and plans those of the new one, a cancel
writes a cancellation notice and skips every reminder still pending. The notices due now are
queued after commit, by id (`delivery.notifications_queue`). `reminders_plan` (the beat) plans
what a rule added later, or a booking before it, still lacks: `INSERT ... ON CONFLICT DO
NOTHING` on the unique (appointment, rule, start), so two beats never plan one twice.
"""

from datetime import UTC, datetime, timedelta, tzinfo

from django.db import connection, transaction
from django.utils import timezone

from scheduling.models import Appointment

from .models import Kind, Notification

Status = Notification.Status
NOTICE = {"booked": Kind.CONFIRMATION, "rescheduled": Kind.CHANGE, "cancelled": Kind.CANCELLATION}
UPCOMING = (Appointment.Status.BOOKED,)
# How far ahead the beat plans reminders (a rule's offset is at most 60 days).
PLAN_HORIZON = timedelta(days=61)


def reminder_due(*, start: datetime, offset_minutes: int, zone: tzinfo) -> datetime:
    """When a reminder `offset_minutes` before `start` is due: whole days back on the zone's
    wall clock (the same local time, whatever a DST change did in between), then the rest in
    elapsed minutes."""
    days, minutes = divmod(offset_minutes, 24 * 60)
    local = start.astimezone(zone)
    wall = (local.replace(tzinfo=None) - timedelta(days=days)).replace(tzinfo=zone)
    return (wall - timedelta(minutes=minutes)).astimezone(UTC)


_COLUMNS = (
    "uid, appointment_id, patient_id, kind, channel, rule_id, start, due_at, status, attempts, "
    "recipient, provider_id, reason, created_at"
)
# The visits' zones: an in-person visit's location's, else the clinic's (practice.formats'
# visit_zone, in SQL).
_VISITS = """
  SELECT a.id, a.patient_id, a.start, a.appointment_type_id,
         COALESCE(NULLIF(l.timezone, ''), %(clinic_zone)s) AS zone
    FROM scheduling_appointment a
    LEFT JOIN practice_location l ON l.id = a.location_id AND NOT a.is_telehealth
   WHERE {where}
"""
# One reminder per (visit, rule, start): whole days back on the zone's wall clock (`AT TIME
# ZONE` twice), the rest in elapsed minutes; none already due; a second plan is dropped by the
# unique index.
_REMINDERS = f"""
  INSERT INTO notifications_notification ({_COLUMNS})
  SELECT gen_random_uuid(), v.id, v.patient_id, 'reminder', r.channel, r.id, v.start, d.due,
         'pending', 0, '', '', '', %(now)s
    FROM visit v
    JOIN notifications_reminderrule r
      ON r.is_active
     AND (r.appointment_type_id IS NULL OR r.appointment_type_id = v.appointment_type_id)
   CROSS JOIN LATERAL (
     SELECT (((v.start AT TIME ZONE v.zone) - make_interval(days => r.offset_minutes / 1440))
              AT TIME ZONE v.zone) - make_interval(mins => r.offset_minutes %% 1440) AS due
   ) d
   WHERE d.due > %(now)s
  ON CONFLICT DO NOTHING
  RETURNING id
"""
# The notice of a change on each channel: pending, or skipped with the reason (an opt-out, no
# address); and the visit's reminders, in the same statement.
_NOTICES_AND_REMINDERS = f"""
WITH visit AS ({_VISITS.format(where="a.id = %(appointment)s")}),
notices AS (
  INSERT INTO notifications_notification ({_COLUMNS})
  SELECT gen_random_uuid(), v.id, v.patient_id, %(kind)s, c.channel, NULL, v.start, %(now)s,
         CASE WHEN o.id IS NOT NULL OR c.address = '' THEN 'skipped' ELSE 'pending' END, 0,
         '', '',
         CASE WHEN o.id IS NOT NULL THEN 'The patient opted out of ' || c.label || '.'
              WHEN c.address = '' THEN 'The patient has no ' || c.missing || '.'
              ELSE '' END,
         %(now)s
    FROM visit v
   CROSS JOIN (VALUES ('email', %(email)s, 'Email', 'email address'),
                      ('sms', %(phone)s, 'SMS', 'mobile number'))
         AS c(channel, address, label, missing)
    LEFT JOIN notifications_channeloptout o ON o.patient_id = v.patient_id AND o.channel = c.channel
  RETURNING id, status
),
reminders AS ({{reminders}})
SELECT id FROM notices WHERE status = 'pending' ORDER BY id
"""
_NO_REMINDERS = "SELECT NULL::bigint AS id WHERE false"


def _clinic_zone() -> str:
    return getattr(getattr(connection, "tenant", None), "timezone", "") or "UTC"


def appointment_notices_write(
    *, appointment: Appointment, kind: str, now: datetime | None = None
) -> list[int]:
    """Write the rows a change calls for (in the caller's transaction: one statement for a
    booking) and queue the notices due now on commit. Returns their ids."""
    now = now or timezone.now()
    notice = NOTICE.get(kind)
    if notice is None:
        return []  # check-in, completion, no-show: nothing to tell the patient
    pending = Notification.objects.filter(
        appointment=appointment, kind=Kind.REMINDER, status=Status.PENDING
    )
    if kind == "rescheduled":
        pending.exclude(start=appointment.start).update(
            status=Status.SKIPPED, reason="The visit was moved."
        )
    elif kind == "cancelled":
        pending.update(status=Status.SKIPPED, reason="The visit was cancelled.")
    patient = appointment.patient
    plan = kind in ("booked", "rescheduled")
    sql = _NOTICES_AND_REMINDERS.replace("{reminders}", _REMINDERS if plan else _NO_REMINDERS)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "appointment": appointment.pk, "kind": str(notice), "now": now,
                "email": patient.email or "", "phone": patient.phone or "",
                "clinic_zone": _clinic_zone(),
            },
        )  # fmt: skip
        ids = [row[0] for row in cursor.fetchall()]
    if ids:
        from .delivery import notifications_queue

        transaction.on_commit(lambda: notifications_queue(ids), robust=True)
    return ids


def reminders_plan(*, now: datetime | None = None, horizon: timedelta = PLAN_HORIZON) -> int:
    """Plan, in one statement, the reminders that upcoming booked visits lack (a rule made
    after they were booked). Safe to run concurrently: the unique index drops a second plan.
    Returns how many rows this call inserted."""
    now = now or timezone.now()
    where = "a.status = 'booked' AND a.start > %(now)s AND a.start <= %(until)s"
    sql = f"WITH visit AS ({_VISITS.format(where=where)}), planned AS ({_REMINDERS}) " + (
        "SELECT count(*) FROM planned"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"now": now, "until": now + horizon, "clinic_zone": _clinic_zone()})
        return int(cursor.fetchone()[0])


# A message about no visit (a waitlist offer) on each channel: pending, or skipped with the
# reason; once per (kind, subject, channel) by the unique index.
_SUBJECT_NOTICES = f"""
  INSERT INTO notifications_notification ({_COLUMNS}, about)
  SELECT gen_random_uuid(), NULL, %(patient)s, %(kind)s, c.channel, NULL, %(start)s, %(now)s,
         CASE WHEN o.id IS NOT NULL OR c.address = '' THEN 'skipped' ELSE 'pending' END, 0,
         '', '',
         CASE WHEN o.id IS NOT NULL THEN 'The patient opted out of ' || c.label || '.'
              WHEN c.address = '' THEN 'The patient has no ' || c.missing || '.'
              ELSE '' END,
         %(now)s, %(about)s
    FROM (VALUES ('email', %(email)s, 'Email', 'email address'),
                 ('sms', %(phone)s, 'SMS', 'mobile number'))
         AS c(channel, address, label, missing)
    LEFT JOIN notifications_channeloptout o ON o.patient_id = %(patient)s AND o.channel = c.channel
  ON CONFLICT DO NOTHING
  RETURNING id, status
"""


def subject_notices_write(
    *, kind: str, about: str, patient, start: datetime, now: datetime | None = None
) -> list[int]:
    """Write, in the caller's transaction, the message of `kind` about `about` (no visit: a
    waitlist offer's `waitlist_offer:<id>`) on each of the patient's channels, in one
    statement (pending, or skipped: an opt-out, no address; a second write of one subject is
    dropped by `notification_once_per_subject`), and queue the pending ones after commit.
    The sender asks the subject's registered check and context (`subjects.py`). Returns the
    pending ids."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _SUBJECT_NOTICES,
            {
                "patient": patient.pk, "kind": str(kind), "about": about, "start": start,
                "now": now, "email": patient.email or "", "phone": patient.phone or "",
            },
        )  # fmt: skip
        ids = sorted(pk for pk, status in cursor.fetchall() if status == Status.PENDING)
    if ids:
        from .delivery import notifications_queue

        transaction.on_commit(lambda: notifications_queue(ids), robust=True)
    return ids
