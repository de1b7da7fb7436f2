"""`manage.py secrets_reencrypt`: after a SECRET_KEY rotation (the old key kept in
SECRET_KEY_FALLBACKS), rewrite every encrypted column (clinic.crypto.EncryptedTextField) of
every clinic under the new key, so the old one can then be dropped."""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction
from django_tenants.utils import schema_context

from clinic.crypto import EncryptedTextField
from tenants.selectors import clinic_list


def encrypted_columns() -> list[tuple[type[models.Model], str]]:
    return [
        (model, field.attname)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


class Command(BaseCommand):
    help = "Rewrite every encrypted secret of every clinic under the current SECRET_KEY."

    def handle(self, *args, **options) -> None:
        columns = encrypted_columns()
        for clinic in clinic_list():
            rewritten = 0
            with schema_context(clinic.schema_name), transaction.atomic():
                for model, column in columns:
                    # read in clear with any key, written back under SECRET_KEY's
                    for pk, value in model._default_manager.values_list("pk", column).iterator():
                        if value:
                            model._default_manager.filter(pk=pk).update(**{column: value})
                            rewritten += 1
            self.stdout.write(f"{clinic.schema_name}: {rewritten} secret(s) re-encrypted")
