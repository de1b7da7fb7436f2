from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Clinics"

    def ready(self) -> None:
        from . import selectors  # noqa: F401  (connects the domain-cache invalidation)
