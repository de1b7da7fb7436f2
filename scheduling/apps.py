from django.apps import AppConfig


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
        watch_for_answers(
            Appointment, AppointmentType, NextAvailable, NextAvailableAt, TimeOff, WorkingHours
        )
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
