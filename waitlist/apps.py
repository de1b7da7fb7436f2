from django.apps import AppConfig


class WaitlistConfig(AppConfig):
    name = "waitlist"
    verbose_name = "Waitlist"

    def ready(self) -> None:
        from notifications.subjects import subject_register
        from scheduling.busy import busy_source_register
        from scheduling.signals import appointment_changed, schedule_opened

        from . import tasks as _tasks  # noqa: F401
        from .messages import OFFER_SUBJECT
        from .receivers import on_appointment_changed, on_schedule_opened
        from .selectors import HOLDS_BUSY_SQL

        appointment_changed.connect(on_appointment_changed, dispatch_uid="waitlist")
        schedule_opened.connect(on_schedule_opened, dispatch_uid="waitlist")
        busy_source_register(HOLDS_BUSY_SQL)  # held slots are not offered in availability
        subject_register(OFFER_SUBJECT)  # the notifications sender checks and words offers
