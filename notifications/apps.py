from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from practice.rights import patient_data_register
        from scheduling.signals import appointment_changed

        from .models import ReminderRule
        from .receivers import on_appointment_changed
        from .rights import OPT_OUTS_PART, PART
        from .tasks import on_rule_saved

        appointment_changed.connect(on_appointment_changed, dispatch_uid="notifications")
        post_save.connect(on_rule_saved, sender=ReminderRule, dispatch_uid="notifications-plan")
        # A patient's messages and opt-outs in their data export and erasure; registered
        # after scheduling's, so the erasure skips the cancellation notices its cancels wrote.
        patient_data_register(PART)
        patient_data_register(OPT_OUTS_PART)
