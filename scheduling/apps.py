from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _bounds(blocked) -> tuple:
    return (blocked.lower, blocked.upper) if hasattr(blocked, "lower") else tuple(blocked)


def _appointment_saved(sender, instance, created: bool, **kwargs) -> None:
    """A committed appointment change makes stale the cached availability of its practitioner
    and of the whole clinic over the weeks it left and took (`clinic.api.calendar_changed`);
    a change whose earlier place is not known (an appointment neither read whole nor created
    here), every cached answer of the clinic."""
    from clinic.api import calendar_changed, clinic_data_changed

    now = (instance.practitioner_id, instance.blocked)
    before = instance.calendar_as_saved
    if before is None and not created:
        clinic_data_changed()
    for place in [now] if before in (None, now) else [now, before]:
        calendar_changed(place[0], [_bounds(place[1])])
    instance.calendar_as_saved = now


def _appointment_deleted(sender, instance, **kwargs) -> None:
    from clinic.api import calendar_changed

    calendar_changed(instance.practitioner_id, [_bounds(instance.blocked)])


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        from practice.apps import watch_for_answers
        from practice.rights import patient_data_register
        from practice.selectors import (
            PractitionerSearchExtension,
            patients_seen_register,
            practitioner_search_extend,
        )

        from .models import (
            Appointment,
            AppointmentType,
            NextAvailable,
            NextAvailableAt,
            TimeOff,
            WorkingHours,
        )
        from .next_available import receivers
        from .next_available import tasks as _next_available_tasks  # noqa: F401
        from .rights import PARTS
        from .selectors import (
            patients_seen_by,
            search_slots_at_location,
            search_with_next_available,
        )
        from .signals import connect as send_schedule_opened
        from .smart import tasks as _smart_tasks  # noqa: F401

        # The two tasks modules are imported for Celery, which finds only `<app>.tasks` itself.
        # next_available_refresh writes NextAvailable in bulk (no signal): it says so itself.
        watch_for_answers(AppointmentType, NextAvailable, NextAvailableAt, TimeOff, WorkingHours)
        # An appointment's change is narrower: the weeks it touches (calendar versions).
        post_save.connect(_appointment_saved, sender=Appointment, dispatch_uid="answers-visit")
        post_delete.connect(_appointment_deleted, sender=Appointment, dispatch_uid="answers-visit")
        receivers.connect()
        send_schedule_opened()  # hours added or widened, time off removed or shortened

        practitioner_search_extend(
            PractitionerSearchExtension(
                name="next-available",
                apply=search_with_next_available,
                params=("available_before", "location"),
                fields=("next_available",),
            )
        )
        practitioner_search_extend(
            PractitionerSearchExtension(
                name="slots-at-location",
                apply=search_slots_at_location,
                params=("location",),
            )
        )
        # A practitioner's own patients (their grants' OWN scope) are those they see.
        patients_seen_register(patients_seen_by)
        # A patient's visits, series and smart-booking jobs in their data export and erasure.
        for part in PARTS:
            patient_data_register(part)
