from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The clinic's back office: admin pages that combine several apps, and the admin's look.

    It depends on practice, authorizations and scheduling, and nothing depends on it."""

    name = "backoffice"
    verbose_name = "Back office"
