from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People"

    def ready(self) -> None:
        from clinic.permissions import grants_install

        from . import (
            receivers,
            schema,  # noqa: F401  (registers the OpenAPI auth extension)
        )
        from .roles import grants_collect

        receivers.connect()  # new password, deactivation, new roles: tokens revoked

        # Every app's grants, merged once; `user.has_perm` and the role groups follow them.
        grants_install(grants_collect())
