from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from accounts.auth import client_principal_install

        from .auth import client_principal

        # client-credentials tokens authenticate through accounts' one JWT path
        client_principal_install(client_principal)
