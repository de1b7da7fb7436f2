"""Receivers of scheduling's signals (scheduling/signals.py): in the change's transaction."""

from .planning import appointment_notices_write


def on_appointment_changed(sender, *, appointment, kind: str, by=None, data=None, **kwargs) -> None:
    appointment_notices_write(appointment=appointment, kind=kind)
