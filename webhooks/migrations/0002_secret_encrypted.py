"""Webhook secrets stored encrypted (clinic.crypto.EncryptedTextField): the column becomes
text and the rows written in clear are encrypted in place."""

from django.db import migrations

import clinic.crypto


def encrypt_clear_secrets(apps, schema_editor):
    from cryptography.fernet import InvalidToken

    from clinic.crypto import encrypt, fernet

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, secret FROM webhooks_webhooksubscription")
        for pk, secret in cursor.fetchall():
            try:
                fernet().decrypt(secret.encode())
            except InvalidToken:
                cursor.execute(
                    "UPDATE webhooks_webhooksubscription SET secret = %s WHERE id = %s",
                    [encrypt(secret), pk],
                )


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="webhooksubscription",
            name="secret",
            field=clinic.crypto.EncryptedTextField(editable=False),
        ),
        migrations.RunPython(encrypt_clear_secrets, migrations.RunPython.noop),
    ]
