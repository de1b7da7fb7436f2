from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from practice.rights import patient_data_register
        from scheduling.signals import appointment_changed

        from . import tasks as _tasks  # noqa: F401
        from .receivers import on_appointment_changed
        from .rights import OPT_OUTS_PART, PART

        appointment_changed.connect(on_appointment_changed, dispatch_uid="notifications")
        # A patient's messages and opt-outs in their data export and erasure; registered
        # after scheduling's, so the erasure skips the cancellation notices its cancels wrote.
        patient_data_register(PART)
        patient_data_register(OPT_OUTS_PART)
