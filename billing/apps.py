from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from scheduling.signals import appointment_changed

        from .visit_fees import on_appointment_changed

        # A no-show or a late cancellation charges the policy's fee in the change's
        # transaction; an undone no-show reverses it (billing/visit_fees.py).
        appointment_changed.connect(on_appointment_changed, dispatch_uid="billing.visit_fees")
