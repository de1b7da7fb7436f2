from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from accounts.signals import tokens_revoked

        from .revocation import tokens_revoked_received

        # A user signed out everywhere: their open sockets close (realtime/revocation.py).
        tokens_revoked.connect(tokens_revoked_received, dispatch_uid="realtime-signed-out")
