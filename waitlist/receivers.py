"""Receivers of scheduling's signals (scheduling/signals.py): in the change's transaction."""

from django.db import transaction

from .services import freed_slot_of, opened_spans


def on_appointment_changed(sender, *, appointment, kind: str, by=None, data=None, **kwargs) -> None:
    """A cancellation or a move away frees time: once committed, a worker offers it to the
    waitlist (`offer_slot_task`)."""
    slot = freed_slot_of(appointment, kind, data or {})
    if slot is None:
        return
    from .tasks import offer_slot_task

    args = slot.as_task_args()
    transaction.on_commit(lambda: offer_slot_task.delay(args), robust=True)


def on_schedule_opened(sender, *, practitioner_id: int, opened, **kwargs) -> None:
    """Working hours added or widened, a time off or closure removed or shortened: once committed, a
    worker offers the free slots of the opened time the waitlist could want
    (`offer_opened_time_task`; nothing is queued when nobody waits for that time)."""
    spans = opened_spans(practitioner_id=practitioner_id, opened=opened)
    if not spans:
        return
    from .tasks import offer_opened_time_task

    args = [[lo.isoformat(), hi.isoformat()] for lo, hi in spans]
    transaction.on_commit(lambda: offer_opened_time_task.delay(practitioner_id, args), robust=True)
