from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tenants.backups import BackupError, clinic_export


class Command(BaseCommand):
    help = "Write a clinic's data (every table of its schema, its public rows) and files: .tar.gz"

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--output", help="The archive's path (default: <slug>-<UTC time>.tar.gz here)."
        )

    def handle(self, *args, **opts):
        slug = opts["slug"]
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        output = Path(opts["output"] or f"{slug}-{stamp}.tar.gz")
        try:
            manifest = clinic_export(slug=slug, output=output)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        rows = sum(table["rows"] for table in manifest["tables"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {slug}: {len(manifest['tables'])} tables, {rows} rows, "
                f"{len(manifest['files'])} files to {output}"
            )
        )
