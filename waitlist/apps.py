from django.apps import AppConfig


class WaitlistConfig(AppConfig):
    name = "waitlist"
    verbose_name = "Waitlist"

    def ready(self) -> None:
        from scheduling.busy import busy_source_register
        from scheduling.signals import appointment_changed

        from . import tasks as _tasks  # noqa: F401
        from .receivers import on_appointment_changed
        from .selectors import holds_busy

        appointment_changed.connect(on_appointment_changed, dispatch_uid="waitlist")
        busy_source_register(holds_busy)  # held slots are not offered in availability
