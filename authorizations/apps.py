from django.apps import AppConfig


class AuthorizationsConfig(AppConfig):
    name = "authorizations"
    verbose_name = "Authorizations"

    def ready(self) -> None:
        from practice.rights import patient_data_register

        from .rights import PART, REQUESTS_PART

        # A patient's authorizations (and requests for one) in their data export and erasure.
        patient_data_register(PART)
        patient_data_register(REQUESTS_PART)
