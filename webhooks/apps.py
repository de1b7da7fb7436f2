from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from authorizations import signals as authorizations
        from billing import signals as billing
        from scheduling import signals as scheduling

        from . import receivers as on
        from . import tasks as _tasks  # noqa: F401

        for signal, receiver in (
            (scheduling.appointment_changed, on.on_appointment_changed),
            (scheduling.smart_booking_finished, on.on_smart_booking_finished),
            (authorizations.authorization_threshold_reached, on.on_authorization_threshold_reached),
            (authorizations.authorization_expiring, on.on_authorization_expiring),
            (billing.claims_status_changed, on.on_claims_status_changed),
            (billing.remittance_posted, on.on_remittance_posted),
        ):
            signal.connect(receiver, dispatch_uid="webhooks")
