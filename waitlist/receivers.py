"""Receivers of scheduling's signals (scheduling/signals.py): in the change's transaction."""

from django.db import transaction

from .services import freed_slot_of


def on_appointment_changed(sender, *, appointment, kind: str, by=None, data=None, **kwargs) -> None:
    """A cancellation or a move away frees time: once committed, a worker offers it to the
    waitlist (`offer_slot_task`)."""
    slot = freed_slot_of(appointment, kind, data or {})
    if slot is None:
        return
    from .tasks import offer_slot_task

    args = slot.as_task_args()
    transaction.on_commit(lambda: offer_slot_task.delay(args), robust=True)
