"""The signal receivers that keep the next-available rows right when a schedule rule changes:
working hours, time off, an appointment type, who offers it, a practitioner, the clinic's
settings or a closure. Each queues, once the change commits, a refresh of the practitioners
it can move. Appointments queue their own (`services`, only when they can move the slot)."""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from practice.models import ClinicSettings, Practitioner

from ..models import AppointmentType, Closure, TimeOff, WorkingHours
from .tasks import refresh_next_available_task


def _refresh_next_available(practitioner_ids: list[int] | None) -> None:
    """Once the change commits, queue a refresh of these practitioners' next available slot
    (None: everyone in the clinic). The beat only refreshes what the clock overtakes."""
    if practitioner_ids == []:
        return
    # robust: the change is committed; a broker error is logged, not the caller's error
    transaction.on_commit(lambda: refresh_next_available_task.delay(practitioner_ids), robust=True)


def _practitioner_rules_changed(sender, instance, **kwargs) -> None:
    """Working hours or time off saved or deleted."""
    _refresh_next_available([instance.practitioner_id])


def _type_saved(sender, instance, **kwargs) -> None:
    """Duration, buffers, notice, horizon or the active flag may have changed: its offerers."""
    _refresh_next_available(list(instance.practitioners.values_list("pk", flat=True)))


def _type_deleted(sender, instance, **kwargs) -> None:
    """Its links to practitioners are gone by now: everyone."""
    _refresh_next_available(None)


def _practitioner_saved(sender, instance, **kwargs) -> None:
    """Activated, deactivated, or moved to another time zone."""
    _refresh_next_available([instance.pk])


def _settings_saved(sender, **kwargs) -> None:
    """The clinic's slot step: everyone."""
    _refresh_next_available(None)


def _closure_changed(sender, **kwargs) -> None:
    """A holiday or closure added, changed or removed: everyone (a clinic-wide one reaches
    them all, and a location's whoever works there)."""
    _refresh_next_available(None)


def _offering_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Practitioners added to or removed from an appointment type (from either side)."""
    if not action.startswith("post_"):
        return
    if reverse:  # instance is the practitioner
        _refresh_next_available([instance.pk])
    else:
        _refresh_next_available(None if pk_set is None else sorted(pk_set))


def connect() -> None:
    """Connect the receivers (from `SchedulingConfig.ready`)."""
    for model in (WorkingHours, TimeOff):
        for signal in (post_save, post_delete):
            signal.connect(_practitioner_rules_changed, sender=model, dispatch_uid="next")
    post_save.connect(_type_saved, sender=AppointmentType, dispatch_uid="next")
    post_delete.connect(_type_deleted, sender=AppointmentType, dispatch_uid="next")
    m2m_changed.connect(
        _offering_changed, sender=AppointmentType.practitioners.through, dispatch_uid="next"
    )
    post_save.connect(_practitioner_saved, sender=Practitioner, dispatch_uid="next")
    post_save.connect(_settings_saved, sender=ClinicSettings, dispatch_uid="next")
    for signal in (post_save, post_delete):
        signal.connect(_closure_changed, sender=Closure, dispatch_uid="next")
