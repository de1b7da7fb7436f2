"""Reminders (issue 19) for a clinic with 50,000 upcoming visits.

The bench clinic gets 50,000 booked visits 3-45 days ahead of a visit type of their own
("Reminder bench visit"), written by one INSERT ... SELECT (marked overbooked by the front desk,
so they need no free slot: the exclusion constraint is not what is measured here), patients
with an email address and a mobile number, and the default rules for that type only (48 h
before by email, 2 h before by SMS), so the other scenarios' visits plan nothing.

(a) planning: `notifications.planning.reminders_plan` (the beat's one INSERT ... SELECT ... ON
    CONFLICT DO NOTHING) plans both rules' reminders for the 50,000 visits: rows per second,
    target ≥ 200/s;
(b) sending: `SEND` planned reminders are made due and the beat's sweep
    (`delivery.notifications_due`) queues them in batches (`NOTIFICATION_SEND_BATCH`); the
    Procfile's Celery worker, restarted with the console email and SMS backends, sends them:
    messages per second from the sweep to the last `sent`, target ≥ 200/s;
(c) booking p99 (front desk, JWT, 20 req/s, distinct free slots as scenario 3) alone, then
    while another `SEND` reminders are being sent: target ≤ 1.1 × the first.

Checks: one reminder per (visit, rule, start) (the unique index: a second plan adds none), no
measured row sent twice (attempts 1), and no two active visits overlap."""

from __future__ import annotations

import time
from datetime import timedelta

from bench.bench_clinic import FreeSlots, bearer, bench_ids, in_bench, no_overlaps
from bench.harness import Check, Context, Row, Target, row_from, scenario
from bench.scenarios.booking import booking_requests
from bench.seed import FRONT_DESK_EMAIL
from bench.servers import celery_worker

VISITS = 50_000
SEND = 6_000
TARGET_PER_S = 200.0
BOOKING_RATE = 20
TYPE_NAME = "Reminder bench visit"
CONSOLE = {
    "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    "SMS_BACKEND": "notifications.sms.ConsoleSmsBackend",
}


def _visits(count: int) -> tuple[int, int]:
    """The scenario's visits (made once, topped up to `count`): returns (type id, visits)."""
    from django.db import connection

    from accounts.models import User
    from practice.models import Patient, Practitioner
    from scheduling.models import Appointment, AppointmentType

    with in_bench():
        kind, _ = AppointmentType.objects.get_or_create(
            name=TYPE_NAME, defaults={"duration_minutes": 30, "min_notice_minutes": 0}
        )
        Patient.objects.filter(email="").update(email="bench.patient@example.test")
        Patient.objects.filter(phone="").update(phone="+1 212 555 0100")
        have = Appointment.objects.filter(appointment_type=kind, status="booked").count()
        if have < count:
            desk = User.objects.get(email=FRONT_DESK_EMAIL).pk
            doctors = list(Practitioner.objects.order_by("pk").values_list("pk", flat=True))
            patients = list(Patient.objects.order_by("pk").values_list("pk", flat=True)[:5000])
            with connection.cursor() as cursor:
                # Visit n: practitioner n mod P, day 3 + (n // P) mod 42, 08:00 UTC + 30 min ×
                # (n // (P × 42)) mod 20: spread over 42 days.
                cursor.execute(
                    """
                    INSERT INTO scheduling_appointment
                      (practitioner_id, patient_id, appointment_type_id, start, "end", blocked,
                       status, source, is_telehealth, telehealth_url, notes, created_at,
                       updated_at, overbooked, overbooked_by_id, cancellation_reason,
                       is_late_cancel, reschedule_count, authorization_warning, uid)
                    SELECT d.pk, p.pk, %(kind)s, s.start, s.start + interval '30 minutes',
                           tstzrange(s.start, s.start + interval '30 minutes'), 'booked',
                           'staff', false, '', 'bench reminders', now(), now(), true, %(desk)s,
                           '', false, 0, '', gen_random_uuid()
                      FROM generate_series(%(have)s, %(count)s - 1) AS n
                      CROSS JOIN LATERAL (
                        SELECT (%(doctors)s::int[])[1 + n %% %(nd)s] AS pk) d
                      CROSS JOIN LATERAL (
                        SELECT (%(patients)s::int[])[1 + n %% %(np)s] AS pk) p
                      CROSS JOIN LATERAL (
                        SELECT date_trunc('day', now()) + interval '8 hours'
                               + make_interval(days => 3 + (n / %(nd)s) %% 42)
                               + make_interval(mins => 30 * ((n / (%(nd)s * 42)) %% 20))
                               AS start) s
                    """,
                    {
                        "kind": kind.pk, "desk": desk, "have": have, "count": count,
                        "doctors": doctors, "nd": len(doctors), "patients": patients,
                        "np": len(patients),
                    },
                )  # fmt: skip
                cursor.execute("ANALYZE scheduling_appointment")
        total = Appointment.objects.filter(appointment_type=kind, status="booked").count()
    return kind.pk, total


def _rules(type_id: int) -> None:
    from notifications.models import ReminderRule

    with in_bench():
        for name, minutes, channel in (
            ("Bench 48 h by email", 48 * 60, "email"),
            ("Bench 2 h by SMS", 120, "sms"),
        ):
            ReminderRule.objects.get_or_create(
                name=name,
                defaults={
                    "offset_minutes": minutes, "channel": channel, "appointment_type_id": type_id,
                },
            )  # fmt: skip


def _plan(type_id: int) -> tuple[int, float, int]:
    """Plan (timed; an earlier run's reminders of these visits removed first), then plan again
    (the unique index adds nothing). Returns (rows, seconds, rows of the second plan)."""
    from notifications.models import Notification
    from notifications.planning import reminders_plan

    with in_bench():
        Notification.objects.filter(appointment__appointment_type_id=type_id).delete()
        started = time.perf_counter()
        planned = reminders_plan()
        seconds = time.perf_counter() - started
        again = reminders_plan()
    return planned, seconds, again


def _make_due(type_id: int, count: int) -> list[int]:
    """`count` pending reminders of the scenario's visits, due a minute ago (and not yet
    queued: an interrupted earlier run's rows count as new)."""
    from django.utils import timezone

    from notifications.models import Notification

    with in_bench():
        ids = list(
            Notification.objects.filter(
                status="pending", kind="reminder", appointment__appointment_type_id=type_id
            )
            .order_by("id")
            .values_list("pk", flat=True)[:count]
        )
        Notification.objects.filter(pk__in=ids).update(
            due_at=timezone.now() - timedelta(minutes=1), queued_at=None
        )
    return ids


def _console_worker(ctx: Context) -> None:
    """The harness's worker, restarted with the console backends (same queue and flags)."""
    from clinic.celery import app

    old = next((s for s in ctx.stack.services if s.name == "worker"), None)
    if old is not None:
        ctx.stack.stop(old)
    worker = celery_worker(
        env={**ctx.env, **CONSOLE}, log_dir=ctx.log_dir, queue=ctx.env["CELERY_QUEUE"], nice=10
    )
    ctx.stack.start(worker)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the Celery worker did not answer within 60 s")


def _sweep(ctx: Context) -> float:
    """Queue the due rows as the beat does, on the queue the bench's worker reads (this
    process's settings name the default queue, which no bench worker reads); returns when it
    started."""
    from django.conf import settings

    from notifications.delivery import notifications_due

    settings.NOTIFICATIONS_QUEUE = ctx.env["CELERY_QUEUE"]
    with in_bench():
        started = time.perf_counter()
        notifications_due(stuck_after=timedelta(minutes=5))
    return started


def _wait_sent(ids: list[int], started: float, timeout_s: float) -> tuple[float, int]:
    from notifications.models import Notification

    deadline = time.monotonic() + timeout_s
    sent = 0
    with in_bench():
        while True:  # counted at least once (a timeout of 0: how many now)
            sent = Notification.objects.filter(pk__in=ids, status__in=("sent", "skipped")).count()
            if sent == len(ids) or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    return time.perf_counter() - started, sent


def _sent_once(ids: list[int]) -> Check:
    from django.db.models import Count

    from notifications.models import Notification

    with in_bench():
        rows = dict(
            Notification.objects.filter(pk__in=ids)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        twice = Notification.objects.filter(pk__in=ids, attempts__gt=1).count()
    # Rows still pending when the wait ended are the rate's to show, not a broken invariant.
    return Check("no measured row sent twice", twice == 0, f"{rows}, {twice} tried twice")


def _booking(ctx: Context, slots: FreeSlots, tag: str):
    ids = bench_ids()
    headers = bearer(ctx, FRONT_DESK_EMAIL)
    total = int(ctx.rate(BOOKING_RATE) * ctx.durations.latency_s) + 1
    requests = booking_requests(slots.take(total), type_id=ids.visit_type, tag=tag, headers=headers)
    return ctx.latency(lambda i: requests[i], rate=BOOKING_RATE, ok_statuses=(201,))


def _rate_row(label: str, count: int, seconds: float, *, checks=(), notes: str = "") -> Row:
    per_s = count / seconds if seconds else 0.0
    return Row(
        scenario="reminders",
        label=label,
        offered=f"{count} rows",
        achieved_rps=round(per_s, 1),
        p50_ms=round(seconds * 1000, 1),
        target=f"≥ {TARGET_PER_S:g}/s",
        passed=per_s >= TARGET_PER_S,
        checks=list(checks),
        notes=notes or f"{count} in {seconds:.2f} s = {per_s:.0f}/s (p50 column: the time, ms)",
        data={"rows": count, "seconds": round(seconds, 3), "per_second": round(per_s, 1)},
    )


@scenario(
    "reminders",
    title="Reminders: 50,000 upcoming visits planned and sent (console backends); booking p99",
    order=95,
    needs_ceiling=False,
    smoke=True,
)
def reminders(ctx: Context) -> list[Row]:
    visits = 500 if ctx.smoke else VISITS
    send = 200 if ctx.smoke else SEND
    type_id, total = _visits(visits)
    _rules(type_id)
    planned, seconds, again = _plan(type_id)
    rows = [
        _rate_row(
            f"reminders (a): planning for {total} upcoming visits, 2 rules",
            planned,
            seconds,
            checks=[Check("a second plan adds none", again == 0, f"{again} rows")],
            notes=f"{planned} reminders in {seconds:.2f} s = {planned / max(seconds, 1e-9):.0f}/s "
            "(one INSERT ... SELECT)",
        )
    ]
    _console_worker(ctx)
    first = _make_due(type_id, send)
    started = _sweep(ctx)
    elapsed, sent = _wait_sent(first, started, timeout_s=max(120.0, send / 20))
    rows.append(
        _rate_row(
            f"reminders (b): sending {len(first)} due reminders, Celery worker, console backends",
            sent,
            elapsed,
            checks=[_sent_once(first)],
        )
    )
    run = f"bench reminders {int(time.time())}"
    slots = FreeSlots()
    alone = _booking(ctx, slots, f"{run} alone")
    # Enough due that sending at (b)'s rate outlasts the booking window: every booking of
    # the second run is made while reminders are being sent.
    per_s = sent / elapsed if elapsed else 0.0
    second = _make_due(type_id, max(send, int(per_s * ctx.durations.latency_s * 1.5)))
    started = _sweep(ctx)
    during = _booking(ctx, slots, f"{run} during")
    _, left = _wait_sent(second, started, timeout_s=0)
    _wait_sent(second, started, timeout_s=max(120.0, len(second) / 20))
    base = alone.p99_ms or 0.0
    limit = Target(p99_ms=round(base * 1.1, 1)) if base else Target()
    rows.append(row_from("reminders", "reminders (c): booking p99, alone", alone))
    rows.append(
        row_from(
            "reminders",
            "reminders (c): booking p99, while reminders are sent",
            during,
            target=limit,
            checks=[_sent_once(second), no_overlaps()],
            notes=f"≤ 1.1 × alone ({base:.1f} ms); {len(second)} reminders queued at its start, "
            f"{len(second) - left} still unsent at its end",
        )
    )
    return rows
