from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tenants.backups import BackupError, clinic_import
from tenants.services import clinic_host


class Command(BaseCommand):
    help = "Make a new clinic from a clinic_export archive (same migration state as the code)."

    def add_arguments(self, parser):
        parser.add_argument("archive")
        parser.add_argument("--slug", required=True, help="The new clinic's slug (not in use).")
        parser.add_argument("--name", help="Its name (default: the archive's clinic's).")

    def handle(self, *args, **opts):
        try:
            result = clinic_import(
                archive_path=Path(opts["archive"]), slug=opts["slug"], name=opts["name"]
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {result.tables} tables, {result.rows} rows, {result.files} files "
                f"into {result.clinic.name} at http://{clinic_host(result.clinic.slug)}/"
            )
        )
