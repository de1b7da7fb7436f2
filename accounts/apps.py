from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People"

    def ready(self) -> None:
        from clinic.permissions import grants_install

        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from .roles import grants_collect

        # Every app's grants, merged once; `user.has_perm` and the role groups follow them.
        grants_install(grants_collect())
